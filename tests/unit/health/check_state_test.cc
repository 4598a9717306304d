// Rise/fall hysteresis and the critical clock of one check, on a ManualClock.
#include "server/health/check_state.h"

#include <gtest/gtest.h>

namespace muster {
namespace {

using namespace std::chrono_literals;

ProbeResult Result(Health h) { return ProbeResult{h, std::string(ToString(h))}; }

Check Spec(uint32_t rise, uint32_t fall, Health status, std::string output) {
  Check c;
  c.id = "web";
  c.type = CheckType::kHttp;
  c.rise = rise;
  c.fall = fall;
  c.status = status;
  c.output = std::move(output);
  return c;
}

class CheckStateTest : public ::testing::Test {
 protected:
  // Feeds results; returns the state after each.
  std::string Feed(CheckState& s, std::initializer_list<Health> results) {
    std::string out;
    for (Health h : results) {
      s.Observe(Result(h), clock_.Now());
      out += ToString(s.status()).substr(0, 1);
      clock_.Advance(1s);
    }
    return out;
  }
  ManualClock clock_;
};

constexpr Health P = Health::kPassing;
constexpr Health W = Health::kWarning;
constexpr Health C = Health::kCritical;

TEST_F(CheckStateTest, FirstResultOfANewCheckDecidesAtOnce) {
  CheckState s(Spec(3, 3, C, ""), clock_.Now());
  auto change = s.Observe(Result(P), clock_.Now());
  ASSERT_TRUE(change.has_value());
  EXPECT_EQ(change->from, C);
  EXPECT_EQ(change->to, P);
  EXPECT_EQ(s.status(), P);
}

TEST_F(CheckStateTest, FirstResultEqualToTheStartIsNoChange) {
  CheckState s(Spec(3, 3, C, ""), clock_.Now());
  EXPECT_FALSE(s.Observe(Result(C), clock_.Now()).has_value());
  EXPECT_EQ(s.status(), C);
}

TEST_F(CheckStateTest, FallNeedsConsecutiveWorseResults) {
  CheckState s(Spec(2, 3, P, "HTTP 200"), clock_.Now());
  // Two failures, then a pass resets the count; then three in a row fall.
  EXPECT_EQ(Feed(s, {C, C, P, C, C, C}), "pppppc");
}

TEST_F(CheckStateTest, RiseNeedsConsecutiveBetterResults) {
  CheckState s(Spec(2, 3, C, "refused"), clock_.Now());
  EXPECT_EQ(Feed(s, {P, C, P, P}), "cccp");
}

TEST_F(CheckStateTest, AFlappingTargetDoesNotFlap) {
  CheckState s(Spec(2, 2, P, "HTTP 200"), clock_.Now());
  EXPECT_EQ(Feed(s, {C, P, C, P, C, P, C, P}), "pppppppp");
}

TEST_F(CheckStateTest, MixedWorseResultsCountTogetherAndTheLatestWins) {
  CheckState s(Spec(1, 3, P, "HTTP 200"), clock_.Now());
  EXPECT_EQ(Feed(s, {W, C, W}), "ppw");
  CheckState t(Spec(1, 3, P, "HTTP 200"), clock_.Now());
  EXPECT_EQ(Feed(t, {W, W, C}), "ppc");
}

TEST_F(CheckStateTest, WarningToCriticalIsAFallAndBackIsARise) {
  CheckState s(Spec(2, 1, W, "HTTP 429"), clock_.Now());
  EXPECT_EQ(Feed(s, {C, P, P}), "ccp");
}

TEST_F(CheckStateTest, RiseAndFallOfOneActAtOnce) {
  CheckState s(Spec(1, 1, P, "HTTP 200"), clock_.Now());
  EXPECT_EQ(Feed(s, {C, P, W, P}), "cpwp");
}

TEST_F(CheckStateTest, LastResultIsKeptEvenWithoutAChange) {
  CheckState s(Spec(2, 3, P, "HTTP 200"), clock_.Now());
  EXPECT_FALSE(s.last().has_value());
  s.Observe(ProbeResult{C, "HTTP 500 Internal Server Error"}, clock_.Now());
  ASSERT_TRUE(s.last().has_value());
  EXPECT_EQ(s.last()->output, "HTTP 500 Internal Server Error");
  EXPECT_EQ(s.status(), P);
  EXPECT_EQ(s.streak(), 1u);
}

TEST_F(CheckStateTest, DeregisterDueAfterCriticalForTheConfiguredTime) {
  Check spec = Spec(1, 1, P, "HTTP 200");
  spec.deregister_critical_after = 30s;
  CheckState s(spec, clock_.Now());
  s.Observe(Result(C), clock_.Now());
  EXPECT_FALSE(s.DeregisterDue(clock_.Now()));
  clock_.Advance(29s);
  EXPECT_FALSE(s.DeregisterDue(clock_.Now()));
  clock_.Advance(1s);
  EXPECT_TRUE(s.DeregisterDue(clock_.Now()));
  // Passing again stops the clock; a new critical spell starts it anew.
  s.Observe(Result(P), clock_.Now());
  EXPECT_FALSE(s.DeregisterDue(clock_.Now()));
  s.Observe(Result(C), clock_.Now());
  clock_.Advance(20s);
  EXPECT_FALSE(s.DeregisterDue(clock_.Now()));
  clock_.Advance(10s);
  EXPECT_TRUE(s.DeregisterDue(clock_.Now()));
}

TEST_F(CheckStateTest, ACheckThatNeverPassesIsDueFromItsStart) {
  Check spec = Spec(1, 1, C, "");
  spec.deregister_critical_after = 10s;
  CheckState s(spec, clock_.Now());
  clock_.Advance(5s);
  s.Observe(Result(C), clock_.Now());
  EXPECT_FALSE(s.DeregisterDue(clock_.Now()));
  clock_.Advance(5s);
  EXPECT_TRUE(s.DeregisterDue(clock_.Now()));
}

TEST_F(CheckStateTest, NeverDueWithoutDeregisterCriticalAfter) {
  CheckState s(Spec(1, 1, C, "refused"), clock_.Now());
  clock_.Advance(std::chrono::hours(24 * 365));
  EXPECT_FALSE(s.DeregisterDue(clock_.Now()));
}

}  // namespace
}  // namespace muster
