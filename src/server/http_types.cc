#include "server/http_types.h"

#include "core/json_codec.h"
#include "core/strings.h"
#include "core/utf8.h"

namespace muster {

Response JsonResponse(http::status status, const boost::json::value& body) {
  Response res{status, 11};
  res.set(http::field::content_type, "application/json");
  res.body() = boost::json::serialize(body);
  // Strings from outside (a probe's output, a quoted argument) may not be
  // UTF-8; the serializer passes their bytes on, and they can only be inside
  // strings, so replacing them keeps the JSON whole.
  if (!IsValidUtf8(res.body())) res.body() = ToValidUtf8(res.body());
  res.body().push_back('\n');
  return res;
}

Response ErrorResponse(http::status status, std::string_view code, std::string_view message) {
  Response res{status, 11};
  res.set(http::field::content_type, "application/json");
  res.body() = ErrorBody(code, message);
  res.body().push_back('\n');
  return res;
}

std::string ResponseHead(const Response& response) {
  auto view = [](const auto& text) { return std::string_view(text.data(), text.size()); };
  std::string head;
  head.reserve(256);
  StrAppend(&head, "HTTP/", response.version() / 10, ".", response.version() % 10, " ",
            response.result_int(), " ", view(response.reason()), "\r\n");
  for (const auto& field : response) {
    StrAppend(&head, view(field.name_string()), ": ", view(field.value()), "\r\n");
  }
  head += "\r\n";
  return head;
}

http::status HttpStatusFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return http::status::ok;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return http::status::bad_request;
    case absl::StatusCode::kUnauthenticated:
      return http::status::unauthorized;
    case absl::StatusCode::kPermissionDenied:
      return http::status::forbidden;
    case absl::StatusCode::kNotFound:
      return http::status::not_found;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return http::status::conflict;
    case absl::StatusCode::kResourceExhausted:
      return http::status::too_many_requests;
    case absl::StatusCode::kUnimplemented:
      return http::status::not_implemented;
    case absl::StatusCode::kUnavailable:
      return http::status::service_unavailable;
    case absl::StatusCode::kDeadlineExceeded:
      return http::status::gateway_timeout;
    default:
      return http::status::internal_server_error;
  }
}

Response ErrorResponse(const absl::Status& status) {
  return ErrorResponse(HttpStatusFor(status.code()), ErrorCodeName(status.code()),
                       MessageOf(status));
}

}  // namespace muster
