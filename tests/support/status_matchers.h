// gmock matchers for absl::Status and absl::StatusOr, so that a test asserts
// the specific error and not just "not ok".
//
// Example:
//   EXPECT_THAT(ValidateAddress("10.0.0.1:0", limits),
//               StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("port")));
//   EXPECT_THAT(ParseDuration("30s"), IsOk());
#pragma once

#include <string>

#include <gmock/gmock.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace muster::testing {

inline const absl::Status& StatusOf(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

MATCHER_P2(StatusIs, code, message_matcher,
           std::string(negation ? "is not" : "is") + " a status with code " +
               absl::StatusCodeToString(code) + " and a message that " +
               ::testing::DescribeMatcher<std::string>(message_matcher)) {
  const absl::Status& status = StatusOf(arg);
  *result_listener << "whose status is " << status;
  return status.code() == code &&
         ::testing::ExplainMatchResult(message_matcher, std::string(status.message()),
                                       result_listener);
}

MATCHER(IsOk, std::string(negation ? "is not" : "is") + " OK") {
  const absl::Status& status = StatusOf(arg);
  *result_listener << "whose status is " << status;
  return status.ok();
}

}  // namespace muster::testing
