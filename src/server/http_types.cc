#include "server/http_types.h"

#include "core/json_codec.h"
#include "core/wire/errors.h"
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
  res.body() = wire::ErrorBody(code, message);
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

Response ErrorResponse(const wire::ErrorCode& error, std::string_view message) {
  return ErrorResponse(static_cast<http::status>(error.http_status), error.name, message);
}

Response ErrorResponse(const absl::Status& status) {
  return ErrorResponse(static_cast<http::status>(wire::HttpStatusFor(status.code())),
                       wire::ErrorCodeName(status.code()), MessageOf(status));
}

}  // namespace muster
