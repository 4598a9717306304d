// NewMusterRegistry's checks of its options (no server involved: nothing
// connects before the first call).
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "muster/registry.h"
#include "support/status_matchers.h"

namespace muster::testing {
namespace {

MusterRegistryOptions OptionsFor(std::vector<std::string> addresses) {
  MusterRegistryOptions options;
  options.addresses = std::move(addresses);
  return options;
}

using ::testing::_;
using ::testing::HasSubstr;

// A registry needs at least one address.
TEST(MusterRegistryOptionsTest, NoAddressIsInvalidArgument) {
  EXPECT_THAT(NewMusterRegistry({}), StatusIs(absl::StatusCode::kInvalidArgument, _));
}

// Every address must be host:port.
TEST(MusterRegistryOptionsTest, MalformedAddressIsInvalidArgument) {
  EXPECT_THAT(NewMusterRegistry(OptionsFor({"127.0.0.1:8470", "nope"})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("nope")));
  EXPECT_THAT(NewMusterRegistry(OptionsFor({"127.0.0.1:0"})),
              StatusIs(absl::StatusCode::kInvalidArgument, _));
}

// Attempts and backoffs must make sense.
TEST(MusterRegistryOptionsTest, BadRetrySettingsAreInvalidArgument) {
  MusterRegistryOptions no_attempts = OptionsFor({"127.0.0.1:8470"});
  no_attempts.max_attempts = 0;
  EXPECT_THAT(NewMusterRegistry(no_attempts),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_attempts")));
  MusterRegistryOptions inverted = OptionsFor({"127.0.0.1:8470"});
  inverted.initial_backoff = std::chrono::milliseconds(10);
  inverted.max_backoff = std::chrono::milliseconds(5);
  EXPECT_THAT(NewMusterRegistry(inverted), StatusIs(absl::StatusCode::kInvalidArgument, _));
}

// A watch stream needs a positive idle limit; the default is 45 s.
TEST(MusterRegistryOptionsTest, NonPositiveStreamIdleTimeoutIsInvalidArgument) {
  EXPECT_EQ(MusterRegistryOptions{}.stream_idle_timeout, std::chrono::seconds(45));
  for (auto idle : {std::chrono::milliseconds(0), std::chrono::milliseconds(-1)}) {
    MusterRegistryOptions options = OptionsFor({"127.0.0.1:8470"});
    options.stream_idle_timeout = idle;
    EXPECT_THAT(NewMusterRegistry(options),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("stream_idle_timeout")))
        << idle.count() << " ms";
  }
  MusterRegistryOptions short_idle = OptionsFor({"127.0.0.1:8470"});
  short_idle.stream_idle_timeout = std::chrono::milliseconds(1);
  auto registry = NewMusterRegistry(short_idle);
  ASSERT_THAT(registry, IsOk());
  (*registry)->Close();
}

// Good options make a registry without connecting anywhere.
TEST(MusterRegistryOptionsTest, GoodOptionsMakeARegistry) {
  auto registry = NewMusterRegistry(OptionsFor({"127.0.0.1:8470", "localhost:8471"}));
  ASSERT_THAT(registry, IsOk());
  (*registry)->Close();
}

}  // namespace
}  // namespace muster::testing
