// least_request: power of two choices on in-flight calls.
#include <gtest/gtest.h>

#include "unit/balancer/balancer_test_util.h"
#include "client/balancers/least_request.h"

namespace muster {
namespace {

using testing::Excluding;
using testing::ListOf;
using testing::MakeInstance;
using testing::RandomFrom;
using testing::SeededRandom;
using testing::Uniform;

class LeastRequestTest : public ::testing::Test {
 protected:
  LeastRequestBalancer balancer_{RandomFrom(SeededRandom(11))};

  // Picks until `count` picks of `id` are held (others are released at once).
  std::vector<Picked> Hold(const std::string& id, int count) {
    std::vector<Picked> held;
    while (static_cast<int>(held.size()) < count) {
      auto picked = balancer_.Pick(Excluding([&](const Instance& i) { return i.id != id; }));
      EXPECT_TRUE(picked.ok()) << picked.status();
      if (!picked.ok()) break;
      held.push_back(*picked);
    }
    return held;
  }
};

// Pick counts a call in flight and Done ends it.
TEST_F(LeastRequestTest, PickAndDoneTrackInFlight) {
  balancer_.Update(Uniform(3));
  auto held = Hold("i1", 4);
  EXPECT_EQ(balancer_.InFlight("i1"), 4);
  EXPECT_EQ(balancer_.InFlight("i0"), 0);
  for (const auto& picked : held) balancer_.Done(picked, true);
  EXPECT_EQ(balancer_.InFlight("i1"), 0);
}

// With two instances both are always sampled: the one with fewer calls in
// flight is picked, so held picks alternate.
TEST_F(LeastRequestTest, PrefersFewerInFlight) {
  balancer_.Update(Uniform(2));
  auto held = Hold("i0", 5);
  for (int i = 0; i < 5; ++i) {
    auto picked = balancer_.Pick({});
    ASSERT_TRUE(picked.ok());
    EXPECT_EQ(picked->instance().id, "i1") << "pick " << i;
    held.push_back(*picked);
  }
  EXPECT_EQ(balancer_.InFlight("i0"), 5);
  EXPECT_EQ(balancer_.InFlight("i1"), 5);
}

// An idle instance among busy ones is picked whenever it is sampled: with
// three instances that is 2 picks in 3.
TEST_F(LeastRequestTest, IdleInstanceWinsWhenSampled) {
  balancer_.Update(Uniform(3));
  auto held_a = Hold("i0", 10);
  auto held_c = Hold("i2", 10);
  int idle = 0;
  constexpr int kPicks = 30000;
  for (int i = 0; i < kPicks; ++i) {
    auto picked = balancer_.Pick({});
    ASSERT_TRUE(picked.ok());
    if (picked->instance().id == "i1") ++idle;
    balancer_.Done(*picked, true);
  }
  EXPECT_NEAR(idle / double(kPicks), 2 / 3.0, 0.02);
}

// Picks held without Done spread evenly: P2C keeps the loads close.
TEST_F(LeastRequestTest, HeldPicksStayBalanced) {
  balancer_.Update(Uniform(10));
  std::vector<Picked> held;
  for (int i = 0; i < 1000; ++i) held.push_back(*balancer_.Pick({}));
  for (int i = 0; i < 10; ++i) {
    EXPECT_NEAR(balancer_.InFlight("i" + std::to_string(i)), 100, 5) << i;
  }
}

// Load is in flight per unit of weight: a weight-300 instance holds about
// three times the calls of a weight-100 one.
TEST_F(LeastRequestTest, HeavierInstanceCarriesMore) {
  balancer_.Update(ListOf({MakeInstance("a", 100), MakeInstance("b", 300)}));
  std::vector<Picked> held;
  for (int i = 0; i < 400; ++i) held.push_back(*balancer_.Pick({}));
  EXPECT_NEAR(balancer_.InFlight("b"), 300, 2);
}

// In-flight counts belong to instance ids: they survive an Update for the
// instances that stay, and new instances start at 0.
TEST_F(LeastRequestTest, CountsSurviveUpdate) {
  balancer_.Update(ListOf({MakeInstance("a"), MakeInstance("b")}));
  auto held = Hold("a", 3);
  balancer_.Update(ListOf({MakeInstance("c"), MakeInstance("a", 100, InstanceStatus::kDisabled)}));
  EXPECT_EQ(balancer_.InFlight("a"), 3);
  EXPECT_EQ(balancer_.InFlight("c"), 0);
  balancer_.Update(ListOf({MakeInstance("c"), MakeInstance("a")}));
  EXPECT_EQ(balancer_.InFlight("a"), 3);
  // Both sampled: c (idle) wins until it has 3 as well.
  for (int i = 0; i < 3; ++i) held.push_back(*balancer_.Pick({}));
  EXPECT_EQ(balancer_.InFlight("c"), 3);
  // Done for picks from the first list finds "a" by id.
  for (int i = 0; i < 3; ++i) balancer_.Done(held[i], true);
  EXPECT_EQ(balancer_.InFlight("a"), 0);
  EXPECT_EQ(balancer_.InFlight("c"), 3);
}

// A Done for an instance that has left is dropped, and counts never go
// below zero (a Done from before the instance left and came back).
TEST_F(LeastRequestTest, DoneForDepartedInstanceIsHarmless) {
  balancer_.Update(ListOf({MakeInstance("a"), MakeInstance("b")}));
  auto held = Hold("a", 2);
  balancer_.Update(ListOf({MakeInstance("b")}));
  balancer_.Done(held[0], false);
  EXPECT_EQ(balancer_.InFlight("b"), 0);
  balancer_.Update(ListOf({MakeInstance("a"), MakeInstance("b")}));
  EXPECT_EQ(balancer_.InFlight("a"), 0);  // a new "a": a fresh count
  balancer_.Done(held[1], false);
  EXPECT_EQ(balancer_.InFlight("a"), 0);
}

// When the less loaded sample is excluded, the other one is taken.
TEST_F(LeastRequestTest, ExcludedSampleGivesWayToOther) {
  balancer_.Update(Uniform(2));
  auto held = Hold("i0", 3);
  for (int pick = 0; pick < 10; ++pick) {
    auto picked = balancer_.Pick(Excluding([](const Instance& i) { return i.id == "i1"; }));
    ASSERT_TRUE(picked.ok());
    EXPECT_EQ(picked->instance().id, "i0");
    balancer_.Done(*picked, true);
  }
}

}  // namespace
}  // namespace muster
