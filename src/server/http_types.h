// HTTP types and response builders shared by the API handlers.
#pragma once

#include <string>
#include <string_view>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include "absl/status/status.h"

namespace muster {

namespace beast = boost::beast;
namespace http = boost::beast::http;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

Response JsonResponse(http::status status, const boost::json::value& body);

// {"error": {"code", "message"}} with the given status.
Response ErrorResponse(http::status status, std::string_view code, std::string_view message);

// The one place where a canonical status code becomes an HTTP status.
http::status HttpStatusFor(absl::StatusCode code);

// An error response for a failed status.
Response ErrorResponse(const absl::Status& status);

}  // namespace muster
