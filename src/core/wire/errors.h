// Errors on the wire: musterd answers a failed request with a 4xx/5xx status
// and the body {"error": {"code": "...", "message": "..."}}. The code is the
// name of the absl::StatusCode the server failed with ("not_found",
// "invalid_argument", ...), or one of a few names of HTTP-level refusals that
// have no status of their own ("method_not_allowed", "gone", ...).
//
// kCodes below is the one table of code <-> name <-> HTTP status: musterd
// answers with it (server/http_types.h, ErrorResponse), and the SDK,
// musterctl and the tests read answers back with DecodeError, which takes
// the exact code and message from the body. The HTTP status alone only
// decides when the body has no code this table knows (an answer from a
// proxy, or from a newer musterd).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace muster::wire {

struct ErrorCode {
  std::string_view name;  // the "code" of the error body
  absl::StatusCode code;  // what a client sees
  int http_status;        // what musterd answers with
};

// Every canonical code, once.
std::span<const ErrorCode> CanonicalCodes();

// Refusals at the HTTP level, named in the body but not a canonical code of
// their own; a client sees them as `code`.
inline constexpr ErrorCode kMethodNotAllowed{"method_not_allowed",
                                             absl::StatusCode::kInvalidArgument, 405};
inline constexpr ErrorCode kBadRequest{"bad_request", absl::StatusCode::kInvalidArgument, 400};
inline constexpr ErrorCode kPayloadTooLarge{"payload_too_large",
                                            absl::StatusCode::kInvalidArgument, 413};
// A watch asked for (or fell behind) history the registry no longer keeps:
// list again and watch from the list's revision + 1.
inline constexpr ErrorCode kGone{"gone", absl::StatusCode::kOutOfRange, 410};

// The HTTP status musterd answers a failure of `code` with (200 for kOk).
int HttpStatusFor(absl::StatusCode code);
// The body's name for `code`: "invalid_argument", "not_found", ...
std::string_view ErrorCodeName(absl::StatusCode code);
// The code a body's name stands for (canonical names and the HTTP-level
// ones above); nullopt for a name this table does not know.
std::optional<absl::StatusCode> StatusCodeForName(std::string_view name);
// The code an HTTP status stands for when the body names none: the inverse of
// HttpStatusFor where that is one-to-one (400 invalid_argument, 409 aborted),
// other 4xx FailedPrecondition, other 5xx Internal, 2xx Ok, else Unknown.
absl::StatusCode StatusCodeForHttpStatus(int http_status);

// {"error": {"code": code, "message": message}}; a message that is not UTF-8
// (it may quote what a client sent) is made valid first.
std::string ErrorBody(std::string_view code, std::string_view message);

// The status an answer with `http_status` and `body` reports: OK for 2xx;
// else the code and message of a JSON error body, the code from the HTTP
// status when the body names none this table knows, and the start of the body
// on one line as the message when it is not a JSON error.
absl::Status DecodeError(int http_status, std::string_view body);

}  // namespace muster::wire
