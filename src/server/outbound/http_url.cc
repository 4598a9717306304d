#include "server/outbound/http_url.h"

#include <algorithm>
#include <cctype>

#include <boost/asio/ip/address.hpp>

#include "core/strings.h"
#include "core/validation.h"

namespace muster::outbound {
namespace {

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

bool HttpUrl::HostIsIp() const {
  boost::system::error_code not_ip;
  boost::asio::ip::make_address(host, not_ip);
  return !not_ip;
}

std::string HttpUrl::Endpoint() const {
  const bool v6 = host.find(':') != std::string::npos;
  return StrCat(v6 ? "[" : "", host, v6 ? "]" : "", ":", port);
}

std::string HttpUrl::Origin() const { return StrCat(tls ? "https" : "http", "://", authority); }

absl::StatusOr<HttpUrl> ParseHttpUrl(std::string_view text) {
  auto bad = [](const char* why) { return absl::InvalidArgumentError(why); };
  HttpUrl url;
  const size_t scheme_end = text.find("://");
  const std::string_view scheme =
      scheme_end == std::string_view::npos ? std::string_view() : text.substr(0, scheme_end);
  if (EqualsIgnoringCase(scheme, "https")) {
    url.tls = true;
  } else if (!EqualsIgnoringCase(scheme, "http")) {
    return bad("not an http:// or https:// URL");
  }
  const std::string_view rest = text.substr(scheme_end + 3);
  const size_t authority_end = rest.find_first_of("/?#");
  url.authority = std::string(rest.substr(0, authority_end));
  std::string_view path = authority_end == std::string_view::npos ? "" : rest.substr(authority_end);
  path = path.substr(0, path.find('#'));  // a fragment is never sent
  url.target = path.starts_with('/') ? std::string(path) : StrCat("/", path);
  for (char c : url.target) {
    // They would end the request line, or start a header of their own.
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return bad("spaces or control characters in the path");
    }
  }
  if (url.authority.empty()) return bad("no host");
  if (url.authority.find('@') != std::string::npos) {
    return bad("user information in the URL is not supported");
  }
  // "host", "host:port", "[v6]" or "[v6]:port".
  const bool has_port =
      !url.authority.ends_with(']') && url.authority.find(':') != std::string::npos;
  auto host_port = SplitHostPort(
      has_port ? url.authority : StrCat(url.authority, url.tls ? ":443" : ":80"), AddressUse::kDial);
  if (!host_port.ok()) return host_port.status();
  url.host = std::move(host_port->first);
  url.port = host_port->second;
  return url;
}

}  // namespace muster::outbound
