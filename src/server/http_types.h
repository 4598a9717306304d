// HTTP types and response builders shared by the API handlers.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include "absl/status/status.h"
#include "core/wire/errors.h"

namespace muster {

namespace beast = boost::beast;
namespace http = boost::beast::http;
using Request = http::request<http::string_body>;

// A response as musterd sends it. Its body may go on past body() with bytes
// shared with a cache (a list's JSON, sent without a copy), then `tail`.
struct Response : http::response<http::string_body> {
  using Message = http::response<http::string_body>;
  using Message::Message;

  // Sent after body(), when set.
  std::shared_ptr<const std::string> shared;
  // Sent after `shared`.
  std::string tail;

  // The bytes of body(), `shared` and `tail`: the Content-Length.
  size_t payload_size() const { return body().size() + (shared ? shared->size() : 0) + tail.size(); }
};

Response JsonResponse(http::status status, const boost::json::value& body);

// {"error": {"code", "message"}} with the given status. The codes and their
// statuses are core/wire/errors.h's; prefer the overloads below.
Response ErrorResponse(http::status status, std::string_view code, std::string_view message);

// An HTTP-level refusal of core/wire/errors.h (wire::kMethodNotAllowed, ...).
Response ErrorResponse(const wire::ErrorCode& error, std::string_view message);

// The status line and header fields of `response` as they go on the wire,
// ending with the empty line. The payload follows it as it is.
std::string ResponseHead(const Response& response);

// An error response for a failed status, with the code's HTTP status from
// core/wire/errors.h (the one table of code <-> status).
Response ErrorResponse(const absl::Status& status);

}  // namespace muster
