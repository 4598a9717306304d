// The URLs musterd sends requests to (HTTP checks, webhooks): parsed once,
// when the check or the webhook is set up, into what a request needs.
//
//   http://host/path?query     https://[::1]:8443/hook     HTTP://127.0.0.1:8080
//
// The scheme is http or https (any case); the host a name, an IPv4 address
// or an IPv6 address in brackets; the port optional (80 or 443), 1..65535
// when given. User information ("user:pw@") is refused: it would go out in
// the clear on every request. A fragment is never sent.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace muster::outbound {

struct HttpUrl {
  bool tls = false;       // https
  std::string host;       // a name or an IP address, IPv6 without brackets
  uint16_t port = 0;      // as written, or the scheme's default
  std::string authority;  // host[:port] as written: the Host header
  std::string target;     // the origin-form request target: "/path?query"

  // The host is an IP address (no lookup; no SNI).
  bool HostIsIp() const;
  // host:port for messages: "127.0.0.1:80", "[::1]:8443".
  std::string Endpoint() const;
  // The URL without its path, which may hold a secret: "https://hooks.example.com".
  std::string Origin() const;
};

// InvalidArgument saying what is wrong ("no host", "user information in the
// URL is not supported", ...); the caller names the URL or its owner.
absl::StatusOr<HttpUrl> ParseHttpUrl(std::string_view text);

}  // namespace muster::outbound
