// round_robin: each enabled instance in turn.
#include <thread>

#include <gtest/gtest.h>

#include "unit/balancer/balancer_test_util.h"

namespace muster {
namespace {

using testing::CountPicks;
using testing::Excluding;
using testing::ListOf;
using testing::MakeInstance;
using testing::MustNew;
using testing::RandomFrom;
using testing::Uniform;

// Index of an id "iN".
int Number(const Picked& picked) { return std::stoi(picked.instance().id.substr(1)); }

// Over whole cycles every instance is picked exactly the same number of
// times, whatever the weights.
TEST(RoundRobinBalancerTest, FullCyclesGiveExactCounts) {
  auto balancer = MustNew("round_robin");
  std::vector<Instance> instances;
  for (int i = 0; i < 7; ++i) instances.push_back(MakeInstance("i" + std::to_string(i), 100 * (i + 1)));
  balancer->Update(ListOf(instances));
  auto once = CountPicks(*balancer, 7);
  EXPECT_EQ(once.size(), 7u);
  for (const auto& [id, count] : once) EXPECT_EQ(count, 1) << id;
  auto many = CountPicks(*balancer, 7 * 1000);
  for (const auto& [id, count] : many) EXPECT_EQ(count, 1000) << id;
}

// Picks walk the list in order, starting where the random source says.
TEST(RoundRobinBalancerTest, PicksFollowListOrderFromRandomStart) {
  auto balancer = MustNew("round_robin", RandomFrom([] { return uint64_t{13}; }));
  balancer->Update(Uniform(10));
  for (int i = 0; i < 25; ++i) {
    auto picked = balancer->Pick({});
    ASSERT_TRUE(picked.ok());
    EXPECT_EQ(Number(*picked), (3 + i) % 10);
  }
}

// Disabled instances are left out of the turn.
TEST(RoundRobinBalancerTest, DisabledLeftOutOfTurn) {
  auto balancer = MustNew("round_robin", RandomFrom([] { return uint64_t{0}; }));
  balancer->Update(ListOf({MakeInstance("i0"), MakeInstance("i1", 100, InstanceStatus::kDisabled),
                           MakeInstance("i2"), MakeInstance("i3", 100, InstanceStatus::kDisabled),
                           MakeInstance("i4")}));
  std::vector<int> order;
  for (int i = 0; i < 6; ++i) order.push_back(Number(*balancer->Pick({})));
  EXPECT_EQ(order, (std::vector<int>{0, 2, 4, 0, 2, 4}));
}

// An excluded instance in turn is passed over for the next one, and the walk
// continues after the one picked.
TEST(RoundRobinBalancerTest, ExcludedInTurnGoesToNext) {
  auto balancer = MustNew("round_robin", RandomFrom([] { return uint64_t{0}; }));
  balancer->Update(Uniform(5));
  PickRequest skip_two = Excluding([](const Instance& i) { return i.id == "i2"; });
  std::vector<int> order;
  for (int i = 0; i < 8; ++i) order.push_back(Number(*balancer->Pick(skip_two)));
  EXPECT_EQ(order, (std::vector<int>{0, 1, 3, 4, 0, 1, 3, 4}));
  // Excluding the one at the end of the list wraps around to the start.
  PickRequest skip_four = Excluding([](const Instance& i) { return i.id == "i4"; });
  order.clear();
  for (int i = 0; i < 5; ++i) order.push_back(Number(*balancer->Pick(skip_four)));
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 0}));
}

// After an Update the turn goes on over the new list, with exact cycles.
TEST(RoundRobinBalancerTest, UpdateKeepsCyclesExact) {
  auto balancer = MustNew("round_robin");
  balancer->Update(Uniform(4));
  CountPicks(*balancer, 3);
  balancer->Update(Uniform(6));
  auto counts = CountPicks(*balancer, 6 * 50);
  ASSERT_EQ(counts.size(), 6u);
  for (const auto& [id, count] : counts) EXPECT_EQ(count, 50) << id;
}

// Each thread has its own turn: n picks on any thread cover all n instances.
TEST(RoundRobinBalancerTest, EachThreadCyclesThroughAll) {
  auto balancer = MustNew("round_robin");
  balancer->Update(Uniform(9));
  std::vector<std::map<std::string, int>> counts(4);
  std::vector<std::thread> threads;
  for (auto& thread_counts : counts) {
    threads.emplace_back([&] { thread_counts = CountPicks(*balancer, 9 * 100); });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& thread_counts : counts) {
    ASSERT_EQ(thread_counts.size(), 9u);
    for (const auto& [id, count] : thread_counts) EXPECT_EQ(count, 100) << id;
  }
}

}  // namespace
}  // namespace muster
