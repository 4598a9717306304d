#include "server/http_request.h"

#include <gtest/gtest.h>

namespace muster {
namespace {

TEST(HeaderEndTest, FindsTheEmptyLine) {
  EXPECT_EQ(HeaderEnd(""), 0u);
  EXPECT_EQ(HeaderEnd("GET / HTTP/1.1\r\nHost: a\r\n"), 0u);
  EXPECT_EQ(HeaderEnd("GET / HTTP/1.1\r\nHost: a\r\n\r\nbody"), 27u);
}

TEST(HostPolicyTest, LoopbackListenerAllowsLoopbackNamesAndAddresses) {
  HostPolicy policy("127.0.0.1", {"Registry.Internal"});
  EXPECT_TRUE(policy.restricted());
  for (const char* host : {"127.0.0.1", "127.0.0.1:1", "localhost", "LocalHost:80", "a.localhost",
                           "localhost.", "[::1]", "[::1]:8470", "10.0.0.1:80", "registry.internal",
                           "registry.internal:8470"}) {
    EXPECT_TRUE(policy.Allows(host)) << host;
  }
  for (const char* host : {"evil.example", "evil.example:8470", "localhost.evil.example", "", "[::1", "[::1]x",
                           "registry.internal.evil.example"}) {
    EXPECT_FALSE(policy.Allows(host)) << host;
  }
  EXPECT_TRUE(HostPolicy("[::1]", {}).restricted());
  EXPECT_TRUE(HostPolicy("::1", {}).restricted());
}

TEST(HostPolicyTest, OtherListenersAllowEveryName) {
  for (const char* listen : {"0.0.0.0", "::", "192.0.2.10"}) {
    HostPolicy policy(listen, {});
    EXPECT_FALSE(policy.restricted()) << listen;
    EXPECT_TRUE(policy.Allows("evil.example")) << listen;
  }
  EXPECT_TRUE(HostPolicy().Allows("anything"));
}

std::optional<Response> Read(const std::string& header) {
  RequestParser parser;
  parser.header_limit(kHeaderLimit);
  parser.body_limit(1024);
  return ReadHeader(header, parser, HostPolicy("127.0.0.1", {}), 1024);
}

// The body of the refusal, or "" when the header is accepted.
std::string Refusal(const std::string& header) {
  auto r = Read(header);
  return r ? r->body() : "";
}

TEST(ReadHeaderTest, AcceptsWellFramedRequests) {
  EXPECT_EQ(Refusal("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"), "");
  EXPECT_EQ(Refusal("PUT / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\n"), "");
  EXPECT_EQ(Refusal("PUT / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: Chunked\r\n\r\n"), "");
  EXPECT_EQ(Refusal("GET / HTTP/1.0\r\n\r\n"), "");
}

TEST(ReadHeaderTest, RefusesAmbiguousFraming) {
  const auto status = [](const std::string& framing) {
    auto r = Read("PUT / HTTP/1.1\r\nHost: localhost\r\n" + framing + "\r\n");
    return r ? r->result_int() : 0u;
  };
  EXPECT_EQ(status("Transfer-Encoding: gzip\r\n"), 400u);
  EXPECT_EQ(status("Transfer-Encoding: chunked, chunked\r\n"), 400u);
  EXPECT_EQ(status("Transfer-Encoding: gzip, chunked\r\n"), 501u);
  EXPECT_EQ(status("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), 400u);
  EXPECT_EQ(status("Transfer-Encoding: chunked\r\nContent-Length: 1\r\n"), 400u);
  EXPECT_EQ(status("Content-Length: 1\r\nContent-Length: 1\r\n"), 400u);
  EXPECT_EQ(status("Content-Length: 1,1\r\n"), 400u);
  EXPECT_EQ(status("Content-Length: 2000\r\n"), 413u);
  EXPECT_EQ(status("X-A: 1\r\n 2\r\n"), 400u);
  EXPECT_EQ(status("Host: localhost\r\n"), 400u);  // a second Host
}

TEST(ReadHeaderTest, RefusesForeignHostOnLoopback) {
  auto r = Read("GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->result(), http::status::forbidden);
  EXPECT_NE(r->body().find("--allowed-hosts"), std::string::npos) << r->body();
}

}  // namespace
}  // namespace muster
