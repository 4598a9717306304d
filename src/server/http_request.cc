#include "server/http_request.h"

#include <algorithm>
#include <cctype>

#include "absl/status/status.h"
#include "core/strings.h"
#include "core/utf8.h"

namespace muster {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view View(boost::core::string_view s) { return {s.data(), s.size()}; }

Response BadRequest(std::string_view message) {
  return ErrorResponse(wire::kBadRequest, message);
}

// The host of a Host field, without port or IPv6 brackets, lower case, and
// without the trailing dot of a fully qualified name.
std::string HostName(std::string_view host) {
  host = Trim(host);
  if (host.starts_with('[')) {
    // "[v6]" or "[v6]:port"; anything else names nothing.
    const size_t close = host.find(']');
    if (close == std::string_view::npos) return "";
    if (close + 1 != host.size() && host[close + 1] != ':') return "";
    host = host.substr(1, close - 1);
  } else if (const size_t colon = host.rfind(':'); colon != std::string_view::npos &&
                                                   host.find(':') == colon) {
    host = host.substr(0, colon);
  }
  if (host.ends_with('.')) host.remove_suffix(1);
  return Lower(host);
}

bool IsIpAddress(const std::string& host) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  return !ec;
}

// The framing fields of a parsed header, checked as RFC 9112 §6 asks of a
// server that reads on after the request.
std::optional<Response> CheckFraming(const Request& req) {
  const auto count = [&](http::field f) {
    auto [first, last] = req.equal_range(f);
    return static_cast<size_t>(std::distance(first, last));
  };
  const size_t transfer_encodings = count(http::field::transfer_encoding);
  const size_t content_lengths = count(http::field::content_length);
  if (transfer_encodings > 1) return BadRequest("Transfer-Encoding is given more than once");
  if (transfer_encodings == 1 && content_lengths > 0) {
    return BadRequest("a request may give Transfer-Encoding or Content-Length, not both");
  }
  if (transfer_encodings == 1) {
    if (req.version() < 11) return BadRequest("an HTTP/1.0 request may not give Transfer-Encoding");
    std::vector<std::string_view> codings;
    std::string_view rest = View(req[http::field::transfer_encoding]);
    for (;;) {
      const size_t comma = rest.find(',');
      codings.push_back(Trim(rest.substr(0, comma)));
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
    const auto chunked = [](std::string_view c) { return beast::iequals(c, "chunked"); };
    if (!chunked(codings.back()) || std::any_of(codings.begin(), codings.end() - 1, chunked)) {
      return BadRequest(StrCat("Transfer-Encoding \"", Utf8Prefix(View(req[http::field::transfer_encoding]), 64),
                               "\" does not end the body: chunked must be its last coding, once"));
    }
    if (codings.size() > 1) {
      return ErrorResponse(absl::UnimplementedError(
                           StrCat("transfer coding \"", Utf8Prefix(codings.front(), 64),
                                  "\" is not supported; send the body chunked or with Content-Length")));
    }
  }
  if (content_lengths > 1 || View(req[http::field::content_length]).find(',') != std::string_view::npos) {
    return BadRequest("Content-Length is given more than once");
  }
  return std::nullopt;
}

}  // namespace

size_t HeaderEnd(std::string_view bytes) {
  const size_t end = bytes.find("\r\n\r\n");
  return end == std::string_view::npos ? 0 : end + 4;
}

HostPolicy::HostPolicy(std::string_view listen_host, const std::vector<std::string>& allowed) {
  const std::string listen = HostName(listen_host);
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(listen, ec);
  restricted_ = !ec && address.is_loopback();
  for (const std::string& name : allowed) names_.push_back(HostName(name));
}

bool HostPolicy::Allows(std::string_view host) const {
  if (!restricted_) return true;
  const std::string name = HostName(host);
  // An address in Host was dialled as such, with no name to rebind.
  if (name == "localhost" || name.ends_with(".localhost") || IsIpAddress(name)) return true;
  return std::find(names_.begin(), names_.end(), name) != names_.end();
}

std::optional<Response> ReadHeader(std::string_view header, RequestParser& parser,
                                   const HostPolicy& hosts, size_t body_limit) {
  // A field continued on the next line (obs-fold) is refused, not unfolded:
  // a proxy before musterd may have read it otherwise.
  for (size_t eol = header.find("\r\n"); eol != std::string_view::npos && eol + 2 < header.size();
       eol = header.find("\r\n", eol + 2)) {
    if (header[eol + 2] == ' ' || header[eol + 2] == '\t') {
      return BadRequest("a header field is folded onto a second line (obs-fold); send each on one line");
    }
  }
  beast::error_code ec;
  const size_t used = parser.put(boost::asio::buffer(header.data(), header.size()), ec);
  if (ec) {
    if (auto failure = ReadFailure(ec, body_limit)) return failure;
    return BadRequest(StrCat("malformed HTTP request: ", ec.message()));
  }
  if (!parser.is_header_done() || used != header.size()) {
    return BadRequest("malformed HTTP request header");
  }
  const Request& req = parser.get();
  if (auto framing = CheckFraming(req)) return framing;
  auto [first_host, end_host] = req.equal_range(http::field::host);
  const size_t host_fields = static_cast<size_t>(std::distance(first_host, end_host));
  if (host_fields > 1) return BadRequest("Host is given more than once");
  if (host_fields == 0 && req.version() >= 11) return BadRequest("an HTTP/1.1 request needs a Host field");
  if (host_fields == 1 && !hosts.Allows(View(first_host->value()))) {
    return ErrorResponse(absl::PermissionDeniedError(
        StrCat("Host \"", Utf8Prefix(View(first_host->value()), 128),
               "\" is not a name of this registry: on a loopback address musterd answers loopback "
               "names and addresses only (add the name with --allowed-hosts)")));
  }
  return std::nullopt;
}

std::optional<Response> ReadFailure(const beast::error_code& ec, size_t body_limit) {
  if (ec == http::error::body_limit) {
    return ErrorResponse(wire::kPayloadTooLarge, StrCat("the body is over ", body_limit, " bytes"));
  }
  if (ec == http::error::header_limit) {
    return ErrorResponse(http::status::request_header_fields_too_large, wire::kBadRequest.name,
                         "the request header is over 16 KiB");
  }
  if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
      ec != http::error::end_of_stream && ec != http::error::partial_message &&
      ec != http::error::need_more) {
    return BadRequest(StrCat("malformed HTTP request: ", ec.message()));
  }
  return std::nullopt;
}

}  // namespace muster
