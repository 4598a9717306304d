// ParseHttpUrl: what the HTTP checks and the webhooks accept as a URL.
#include "server/outbound/http_url.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/status_matchers.h"

namespace muster::outbound {
namespace {

using ::testing::HasSubstr;
using testing::IsOk;
using testing::StatusIs;

HttpUrl ParseOrDie(std::string_view text) {
  auto url = ParseHttpUrl(text);
  EXPECT_THAT(url, IsOk()) << text;
  return url.ok() ? *url : HttpUrl{};
}

// Host, port (given or the scheme's), Host header and request target.
TEST(HttpUrlTest, SplitsEveryPart) {
  HttpUrl url = ParseOrDie("http://example.com/a/b?c=d");
  EXPECT_FALSE(url.tls);
  EXPECT_EQ(url.host, "example.com");
  EXPECT_EQ(url.port, 80);
  EXPECT_EQ(url.authority, "example.com");
  EXPECT_EQ(url.target, "/a/b?c=d");
  EXPECT_EQ(url.Endpoint(), "example.com:80");
  EXPECT_EQ(url.Origin(), "http://example.com");
  EXPECT_FALSE(url.HostIsIp());

  url = ParseOrDie("https://127.0.0.1:8443/hook");
  EXPECT_TRUE(url.tls);
  EXPECT_EQ(url.host, "127.0.0.1");
  EXPECT_EQ(url.port, 8443);
  EXPECT_EQ(url.authority, "127.0.0.1:8443");
  EXPECT_EQ(url.target, "/hook");
  EXPECT_TRUE(url.HostIsIp());

  EXPECT_EQ(ParseOrDie("https://example.com").port, 443);
}

// IPv6 literals keep their brackets in the Host header and lose them in the
// host; with and without a port.
TEST(HttpUrlTest, Ipv6Literals) {
  HttpUrl url = ParseOrDie("http://[::1]:9/x");
  EXPECT_EQ(url.host, "::1");
  EXPECT_EQ(url.port, 9);
  EXPECT_EQ(url.authority, "[::1]:9");
  EXPECT_EQ(url.Endpoint(), "[::1]:9");
  EXPECT_TRUE(url.HostIsIp());
  url = ParseOrDie("https://[::1]/");
  EXPECT_EQ(url.host, "::1");
  EXPECT_EQ(url.port, 443);
  EXPECT_EQ(url.authority, "[::1]");
}

// The scheme in any case; no path is "/", a query alone gets one; the
// fragment is dropped.
TEST(HttpUrlTest, SchemePathQueryFragment) {
  EXPECT_EQ(ParseOrDie("HTTP://127.0.0.1:8080").target, "/");
  EXPECT_TRUE(ParseOrDie("HttPs://h/").tls);
  EXPECT_EQ(ParseOrDie("http://127.0.0.1?only=query").target, "/?only=query");
  EXPECT_EQ(ParseOrDie("http://h/x/y?z=1#fragment").target, "/x/y?z=1");
  EXPECT_EQ(ParseOrDie("http://h#f").target, "/");
  EXPECT_EQ(ParseOrDie("http://h/a%20b").target, "/a%20b");
}

// What is refused, and why.
TEST(HttpUrlTest, RefusesWithAReason) {
  const std::pair<const char*, const char*> bad[] = {
      {"", "not an http:// or https:// URL"},
      {"example.com/hook", "not an http:// or https:// URL"},
      {"ftp://127.0.0.1/hook", "not an http:// or https:// URL"},
      {"http:/h/", "not an http:// or https:// URL"},
      {"http://", "no host"},
      {"http:///hook", "no host"},
      {"http://?q", "no host"},
      {"http://user:secret@127.0.0.1/hook", "user information"},
      {"http://127.0.0.1:0/hook", "port must be 1..65535"},
      {"http://127.0.0.1:65536/hook", "port must be 1..65535"},
      {"http://127.0.0.1:/hook", "bad port"},
      {"http://127.0.0.1:123456/", "bad port"},
      {"http://bad host/hook", "bad host character"},
      {"http://::1/hook", "address"},
      {"http://[::1/hook", "address"},
      {"http://127.0.0.1/a path", "spaces or control characters"},
      {"http://127.0.0.1/hook\r\nX-Evil: 1", "spaces or control characters"},
  };
  for (const auto& [text, why] : bad) {
    EXPECT_THAT(ParseHttpUrl(text), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(why)))
        << text;
  }
}

}  // namespace
}  // namespace muster::outbound
