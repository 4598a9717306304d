// Self-preservation: the decision (SelfPreservation with a ManualClock) and
// the catalog that stops expiring when most leases lapse at once.
#include "catalog/self_preservation.h"

#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "catalog/catalog.h"
#include "muster/clock.h"
#include "support/status_matchers.h"
#include "unit/catalog/catalog_test_util.h"

namespace muster {
namespace {

using std::chrono::seconds;
constexpr std::chrono::nanoseconds kTtl = seconds(30);

TEST(SelfPreservationTest, HoldsWhenMoreThanTheShareLapsesWithinTheWindow) {
  ManualClock clock;
  SelfPreservation preservation(SelfPreservationOptions{}, &clock);  // 0.5, 1 min, 10 leases
  EXPECT_FALSE(preservation.Hold(6, 14, kTtl));  // 6 of 20: expire them
  EXPECT_FALSE(preservation.active());
  clock.Advance(seconds(10));
  EXPECT_TRUE(preservation.Hold(5, 9, kTtl));  // 6 + 5 of 20 within the minute
  EXPECT_TRUE(preservation.active());
  // Nothing due: still holding until the held leases would have come due again.
  clock.Advance(seconds(20));
  EXPECT_FALSE(preservation.Hold(0, 14, seconds(0)));
  EXPECT_TRUE(preservation.active());
  clock.Advance(seconds(12));  // past 30 s + 1 s after the hold: they were renewed
  EXPECT_FALSE(preservation.Hold(0, 14, seconds(0)));
  EXPECT_FALSE(preservation.active());
}

TEST(SelfPreservationTest, OldExpiriesLeaveTheWindow) {
  ManualClock clock;
  SelfPreservation preservation(SelfPreservationOptions{}, &clock);
  EXPECT_FALSE(preservation.Hold(8, 12, kTtl));  // 8 of 20
  clock.Advance(seconds(61));
  EXPECT_FALSE(preservation.Hold(5, 7, kTtl));  // 5 of 12: the 8 are out of the window
}

TEST(SelfPreservationTest, SmallRegistriesAndThresholdZeroNeverHold) {
  ManualClock clock;
  SelfPreservation small(SelfPreservationOptions{}, &clock);
  EXPECT_FALSE(small.Hold(5, 2, kTtl));  // 7 leases < min_leases 10
  SelfPreservationOptions off;
  off.threshold = 0;
  SelfPreservation disabled(off, &clock);
  EXPECT_FALSE(disabled.Hold(100, 0, kTtl));
}

// A catalog that sees 20 of 20 leases lapse at once keeps every instance;
// when 15 heartbeat again, the 5 that do not expire one TTL later.
TEST(CatalogSelfPreservationTest, StopsExpiringAndResumesWhenHeartbeatsReturn) {
  ManualClock clock;
  LocalCommitterOptions options;
  options.clock = &clock;
  auto made = testing::MakeEmbedded(options, nullptr);  // memory only
  Catalog& catalog = *made.catalog;
  ASSERT_THAT(catalog.Start(), testing::IsOk());
  for (int i = 0; i < 20; ++i) {
    ASSERT_THAT(testing::RegisterSync(catalog, testing::MakeInstance("svc", "i" + std::to_string(i), 5))
                    .status(),
                testing::IsOk());
  }
  // Each sweep is synchronous: its expiries (or its decision to hold them)
  // are visible when SweepNow returns.
  auto swept = [&](auto condition) {
    made.committer->SweepNow();
    return condition();
  };
  auto self_preserving = [&] { return *catalog.write_status().self_preserving; };
  auto count = [&] { return catalog.List("default", "svc", ListFilter{}).instances.size(); };

  clock.Advance(seconds(6));  // every lease lapsed: held, each with a new 5 s (due at 11 s)
  ASSERT_TRUE(swept([&] { return self_preserving(); }));
  EXPECT_EQ(count(), 20u);
  clock.Advance(seconds(3));  // 9 s: heartbeats return for 15 of them (due at 14 s)
  for (int i = 0; i < 15; ++i) {
    ASSERT_THAT(testing::HeartbeatNow(catalog, InstanceKey{"default", "svc", "i" + std::to_string(i)}).status(),
                testing::IsOk());
  }
  clock.Advance(seconds(3));  // 12 s: the 5 silent ones are due again, 5 of 20: they expire
  ASSERT_TRUE(swept([&] { return count() == 15u; }));
  EXPECT_FALSE(self_preserving());
  for (int i = 0; i < 15; ++i) {
    EXPECT_THAT(testing::HeartbeatNow(catalog, InstanceKey{"default", "svc", "i" + std::to_string(i)}).status(),
                testing::IsOk());
  }
}

}  // namespace
}  // namespace muster
