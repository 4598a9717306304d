// How musterd takes a request off the wire before routing it: where its
// header ends, what its header must say for its end to be unambiguous
// (RFC 9112 §6: one reading of the body's length, or none), and whom it may
// name as its Host.
//
// A request refused here is answered once and its connection closed: when
// the framing of a request is in doubt, so is where the next one starts, and
// reading on would let bytes hidden in a body be taken for a request
// (request smuggling).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/http_types.h"

namespace muster {

using RequestParser = http::request_parser<http::string_body>;

// The most a request's line and header fields may take, with their line ends.
inline constexpr size_t kHeaderLimit = 16 * 1024;

// The offset just past the empty line that ends the header at the start of
// `bytes`, or 0 when the header is not all there yet.
size_t HeaderEnd(std::string_view bytes);

// Which names a request may give in its Host field. On a loopback listener
// without --allowed-hosts only loopback names are allowed, so that a web page
// whose own name resolves to 127.0.0.1 (DNS rebinding) cannot reach musterd
// through a browser; on any other listener, every name.
class HostPolicy {
 public:
  // Every name allowed.
  HostPolicy() = default;
  // For a listener on `listen_host` (an IP address, IPv6 with or without
  // brackets), with these names (case-insensitive, no port) allowed besides.
  HostPolicy(std::string_view listen_host, const std::vector<std::string>& allowed);

  // Whether a Host field of `host` (name or address, with an optional port)
  // may be served.
  bool Allows(std::string_view host) const;
  bool restricted() const { return restricted_; }

 private:
  bool restricted_ = false;
  std::vector<std::string> names_;  // lower case, IPv6 without brackets
};

// Parses the complete header `header` (the bytes up to HeaderEnd) into
// `parser`, which carries musterd's limits (the body limit is `body_limit`),
// and checks its framing and Host.
// Nullopt when the request may be read on; otherwise the answer to send
// before closing the connection.
std::optional<Response> ReadHeader(std::string_view header, RequestParser& parser,
                                   const HostPolicy& hosts, size_t body_limit);

// The answer to a request that failed while its body was read (or its header
// parsed), or nullopt when there is nothing to answer: the peer went away or
// the read timed out.
std::optional<Response> ReadFailure(const beast::error_code& ec, size_t body_limit);

}  // namespace muster
