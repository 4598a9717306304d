// Conversions between grpc::Status and absl::Status. The two share the
// canonical codes (names and numbers, 0 OK through 16 UNAUTHENTICATED); gRPC
// documents them in doc/statuscodes.md, abseil in absl/status/status.h.
#include <string>

#include "muster/grpc_channel_pool.h"

namespace muster {
namespace {

constexpr int kLastCanonicalCode = 16;  // UNAUTHENTICATED in both

}  // namespace

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  const int code = static_cast<int>(status.error_code());
  if (code <= 0 || code > kLastCanonicalCode) {
    return absl::UnknownError(status.error_message());
  }
  return absl::Status(static_cast<absl::StatusCode>(code), status.error_message());
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const int code = static_cast<int>(status.code());
  if (code <= 0 || code > kLastCanonicalCode) {
    return grpc::Status(grpc::StatusCode::UNKNOWN, std::string(status.message()));
  }
  return grpc::Status(static_cast<grpc::StatusCode>(code), std::string(status.message()));
}

}  // namespace muster
