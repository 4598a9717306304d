#include "core/wire/errors.h"

#include <array>

#include <boost/json.hpp>

#include "absl/strings/ascii.h"
#include "core/strings.h"
#include "core/utf8.h"

namespace muster::wire {
namespace {

using absl::StatusCode;

// Several codes share an HTTP status; the first row with a status is the
// code that status stands for when a body names none (StatusCodeForHttpStatus).
constexpr std::array<ErrorCode, 17> kCodes{{
    {"ok", StatusCode::kOk, 200},
    {"invalid_argument", StatusCode::kInvalidArgument, 400},
    {"failed_precondition", StatusCode::kFailedPrecondition, 400},
    {"out_of_range", StatusCode::kOutOfRange, 400},
    {"unauthenticated", StatusCode::kUnauthenticated, 401},
    {"permission_denied", StatusCode::kPermissionDenied, 403},
    {"not_found", StatusCode::kNotFound, 404},
    // A concurrent change got in the way (cluster mode): try again.
    {"aborted", StatusCode::kAborted, 409},
    {"already_exists", StatusCode::kAlreadyExists, 409},
    {"resource_exhausted", StatusCode::kResourceExhausted, 429},
    {"internal", StatusCode::kInternal, 500},
    {"cancelled", StatusCode::kCancelled, 500},
    {"unknown", StatusCode::kUnknown, 500},
    {"data_loss", StatusCode::kDataLoss, 500},
    {"unimplemented", StatusCode::kUnimplemented, 501},
    {"unavailable", StatusCode::kUnavailable, 503},
    // The store (etcd) did not answer in time.
    {"deadline_exceeded", StatusCode::kDeadlineExceeded, 504},
}};

constexpr std::array<ErrorCode, 4> kHttpLevel{kMethodNotAllowed, kBadRequest, kPayloadTooLarge,
                                              kGone};

const ErrorCode* RowOf(StatusCode code) {
  for (const ErrorCode& row : kCodes) {
    if (row.code == code) return &row;
  }
  return nullptr;
}

// Most of a non-JSON error body quoted in a status message.
constexpr size_t kBodyPrefix = 200;

// The start of `body` on one line, whitespace runs folded to one space.
std::string OneLinePrefix(std::string_view body) {
  std::string prefix;
  for (char c : absl::StripAsciiWhitespace(absl::string_view(body.data(), body.size()))) {
    if (prefix.size() == kBodyPrefix) {
      prefix += "...";
      break;
    }
    if (!absl::ascii_isspace(static_cast<unsigned char>(c))) {
      prefix += c;
    } else if (prefix.back() != ' ') {
      prefix += ' ';
    }
  }
  return ToValidUtf8(prefix);
}

}  // namespace

std::span<const ErrorCode> CanonicalCodes() { return kCodes; }

int HttpStatusFor(StatusCode code) {
  const ErrorCode* row = RowOf(code);
  return row != nullptr ? row->http_status : 500;
}

std::string_view ErrorCodeName(StatusCode code) {
  const ErrorCode* row = RowOf(code);
  return row != nullptr ? row->name : "unknown";
}

std::optional<StatusCode> StatusCodeForName(std::string_view name) {
  for (const ErrorCode& row : kCodes) {
    if (row.name == name) return row.code;
  }
  for (const ErrorCode& row : kHttpLevel) {
    if (row.name == name) return row.code;
  }
  return std::nullopt;
}

StatusCode StatusCodeForHttpStatus(int http_status) {
  for (const ErrorCode& row : kCodes) {
    if (row.http_status == http_status) return row.code;
  }
  for (const ErrorCode& row : kHttpLevel) {
    if (row.http_status == http_status) return row.code;
  }
  if (http_status == 431) return StatusCode::kInvalidArgument;  // header fields too large
  if (http_status >= 200 && http_status < 300) return StatusCode::kOk;
  if (http_status >= 400 && http_status < 500) return StatusCode::kFailedPrecondition;
  if (http_status >= 500 && http_status < 600) return StatusCode::kInternal;
  return StatusCode::kUnknown;  // 1xx/3xx: nothing a client of musterd expects
}

std::string ErrorBody(std::string_view code, std::string_view message) {
  boost::json::object error;
  error["code"] = code;
  error["message"] = ToValidUtf8(message);
  boost::json::object body;
  body["error"] = std::move(error);
  return boost::json::serialize(body);
}

absl::Status DecodeError(int http_status, std::string_view body) {
  StatusCode code = StatusCodeForHttpStatus(http_status);
  if (code == StatusCode::kOk) return absl::OkStatus();
  std::string message;
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(body, ec);
  const boost::json::object* error = nullptr;
  if (!ec && v.is_object()) {
    if (const auto* e = v.get_object().if_contains("error"); e != nullptr && e->is_object()) {
      error = &e->get_object();
    }
  }
  if (error != nullptr) {
    if (const auto* name = error->if_contains("code"); name != nullptr && name->is_string()) {
      std::optional<StatusCode> named = StatusCodeForName(name->get_string());
      // An "ok" in a failed answer is nonsense: the HTTP status stands.
      if (named && *named != StatusCode::kOk) code = *named;
    }
    if (const auto* m = error->if_contains("message"); m != nullptr && m->is_string()) {
      message = m->get_string();
    }
  }
  if (message.empty()) {
    const std::string prefix = error != nullptr ? std::string() : OneLinePrefix(body);
    message = prefix.empty() ? StrCat("HTTP ", http_status) : StrCat("HTTP ", http_status, ": ", prefix);
  }
  return absl::Status(code, message);
}

}  // namespace muster::wire
