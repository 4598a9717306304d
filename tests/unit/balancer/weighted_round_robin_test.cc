// weighted_round_robin: smooth weighted round robin as nginx, in both of its
// modes (precomputed cycle and live step under a mutex).
#include <atomic>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "unit/balancer/balancer_test_util.h"
#include "client/balancers/weighted_round_robin.h"

namespace muster {
namespace {

using testing::CountPicks;
using testing::Excluding;
using testing::ListOf;
using testing::MakeInstance;
using testing::RandomFrom;
using testing::SeededRandom;

enum class Mode { kCycle, kLive };

class WeightedRoundRobinTest : public ::testing::TestWithParam<Mode> {
 protected:
  // A balancer in the mode under test. By default its random source gives
  // 0, so a thread's walk of the cycle starts at its beginning.
  std::unique_ptr<Balancer> New(std::function<uint64_t()> random = [] { return uint64_t{0}; }) {
    return std::make_unique<WeightedRoundRobinBalancer>(
        RandomFrom(std::move(random)),
        GetParam() == Mode::kCycle ? WeightedRoundRobinBalancer::kDefaultMaxCycleWork : 0);
  }

  static std::string Sequence(Balancer& balancer, int picks, const PickRequest& request = {}) {
    std::string sequence;
    for (int i = 0; i < picks; ++i) {
      auto picked = balancer.Pick(request);
      if (!picked.ok()) return sequence + "!";
      sequence += picked->instance().id;
    }
    return sequence;
  }
};

INSTANTIATE_TEST_SUITE_P(Modes, WeightedRoundRobinTest, ::testing::Values(Mode::kCycle, Mode::kLive),
                         [](const auto& test) {
                           return test.param == Mode::kCycle ? "Cycle" : "Live";
                         });

// nginx's example: weights 5, 1, 1 give the smooth sequence a a b a c a a,
// repeated.
TEST_P(WeightedRoundRobinTest, NginxExampleIsSmooth) {
  auto balancer = New();
  balancer->Update(ListOf({MakeInstance("a", 5), MakeInstance("b", 1), MakeInstance("c", 1)}));
  EXPECT_EQ(Sequence(*balancer, 21), "aabacaa" "aabacaa" "aabacaa");
}

// Over a full cycle of sum(weights) picks, each instance is picked exactly
// weight times; and over any window of that length, too.
TEST_P(WeightedRoundRobinTest, FullCycleGivesExactCounts) {
  auto balancer = New();
  balancer->Update(ListOf({MakeInstance("a", 300), MakeInstance("b", 200), MakeInstance("c", 700),
                           MakeInstance("d", 100), MakeInstance("e", 100)}));
  // gcd 100: the cycle is 14 picks.
  const std::string sequence = Sequence(*balancer, 14 * 20);
  for (size_t start = 0; start + 14 <= sequence.size(); ++start) {
    const std::string window = sequence.substr(start, 14);
    EXPECT_EQ(std::count(window.begin(), window.end(), 'a'), 3) << window;
    EXPECT_EQ(std::count(window.begin(), window.end(), 'b'), 2) << window;
    EXPECT_EQ(std::count(window.begin(), window.end(), 'c'), 7) << window;
    EXPECT_EQ(std::count(window.begin(), window.end(), 'd'), 1) << window;
    EXPECT_EQ(std::count(window.begin(), window.end(), 'e'), 1) << window;
  }
}

// Smoothness: an instance with a share s of the weight never waits much
// more than 1/s picks between two turns (here: weight 1 of 10 waits exactly
// 10; weight 5 of 10 every other pick).
TEST_P(WeightedRoundRobinTest, HeavyInstanceIsSpreadOut) {
  auto balancer = New();
  balancer->Update(ListOf({MakeInstance("a", 5), MakeInstance("b", 4), MakeInstance("c", 1)}));
  const std::string sequence = Sequence(*balancer, 100);
  // a never twice in a row more than once per cycle; c exactly every 10.
  for (size_t i = 0; i + 2 < sequence.size(); ++i) EXPECT_NE(sequence.substr(i, 3), "aaa");
  std::vector<size_t> c_at;
  for (size_t i = 0; i < sequence.size(); ++i) {
    if (sequence[i] == 'c') c_at.push_back(i);
  }
  ASSERT_EQ(c_at.size(), 10u);
  for (size_t i = 1; i < c_at.size(); ++i) EXPECT_EQ(c_at[i] - c_at[i - 1], 10u);
}

// Disabled instances take no turns; the others keep their proportions.
TEST_P(WeightedRoundRobinTest, DisabledTakeNoTurns) {
  auto balancer = New();
  balancer->Update(ListOf({MakeInstance("a", 2), MakeInstance("x", 50, InstanceStatus::kDisabled),
                           MakeInstance("b", 1)}));
  EXPECT_EQ(Sequence(*balancer, 9), "abaabaaba");
}

// An excluded instance's turns go to the others in proportion to their
// weights (not all to one); once it is no longer excluded it is picked again.
TEST_P(WeightedRoundRobinTest, ExcludedTurnsGoToOthersByWeight) {
  auto balancer = New(SeededRandom(9));
  balancer->Update(ListOf({MakeInstance("a", 5), MakeInstance("b", 1), MakeInstance("c", 2)}));
  PickRequest no_a = Excluding([](const Instance& i) { return i.id == "a"; });
  const std::string sequence = Sequence(*balancer, 8000, no_a);
  EXPECT_EQ(sequence.find('a'), std::string::npos);
  // b expects 1/3; 0.03 is more than 5 standard deviations in cycle mode
  // (random, seeded here), and the live step is exact.
  EXPECT_NEAR(std::count(sequence.begin(), sequence.end(), 'b') / 8000.0, 1 / 3.0, 0.03);
  EXPECT_NE(Sequence(*balancer, 8).find('a'), std::string::npos);
}

// In live mode, exclusion is nginx's: the step runs over the rest, which
// stay smooth.
TEST(WeightedRoundRobinModesTest, LiveExclusionStepsOverTheRest) {
  WeightedRoundRobinBalancer balancer({}, 0);
  balancer.Update(ListOf({MakeInstance("a", 5), MakeInstance("b", 1), MakeInstance("c", 1)}));
  PickRequest no_a = Excluding([](const Instance& i) { return i.id == "a"; });
  std::string sequence;
  for (int i = 0; i < 6; ++i) sequence += balancer.Pick(no_a)->instance().id;
  EXPECT_EQ(sequence, "bcbcbc");
}

// After an Update the picks follow the new weights, exactly over each
// cycle.
TEST_P(WeightedRoundRobinTest, UpdateSwitchesToNewWeights) {
  auto balancer = New();
  balancer->Update(ListOf({MakeInstance("a", 5), MakeInstance("b", 1), MakeInstance("c", 1)}));
  EXPECT_EQ(Sequence(*balancer, 3), "aab");
  balancer->Update(ListOf({MakeInstance("a", 1), MakeInstance("b", 2), MakeInstance("c", 3)}));
  const std::string sequence = Sequence(*balancer, 6 * 10);
  EXPECT_EQ(std::count(sequence.begin(), sequence.end(), 'a'), 10);
  EXPECT_EQ(std::count(sequence.begin(), sequence.end(), 'b'), 20);
  EXPECT_EQ(std::count(sequence.begin(), sequence.end(), 'c'), 30);
}

// In cycle mode each thread walks the cycle from a random point: the
// sequence is a rotation of the smooth one.
TEST(WeightedRoundRobinModesTest, CycleStartsAtRandomPoint) {
  WeightedRoundRobinBalancer balancer(RandomFrom([] { return uint64_t{7 * 100 + 2}; }));
  balancer.Update(ListOf({MakeInstance("a", 5), MakeInstance("b", 1), MakeInstance("c", 1)}));
  std::string sequence;
  for (int i = 0; i < 7; ++i) sequence += balancer.Pick({})->instance().id;
  EXPECT_EQ(sequence, "bacaaaa");
}

// In cycle mode each thread has its own walk: every P picks on any thread
// give exact counts, so threads do not need to share a counter.
TEST(WeightedRoundRobinModesTest, EachThreadWalksWholeCycles) {
  WeightedRoundRobinBalancer balancer({});
  balancer.Update(ListOf({MakeInstance("a", 300), MakeInstance("b", 200), MakeInstance("c", 100)}));
  std::vector<std::map<std::string, int>> counts(4);
  std::vector<std::thread> threads;
  for (auto& thread_counts : counts) {
    threads.emplace_back([&] { thread_counts = CountPicks(balancer, 6 * 500); });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& thread_counts : counts) {
    EXPECT_EQ(thread_counts.at("a"), 1500);
    EXPECT_EQ(thread_counts.at("b"), 1000);
    EXPECT_EQ(thread_counts.at("c"), 500);
  }
}

// The precomputed cycle and the live step give the same sequence, also for
// weights whose cycle is long.
TEST(WeightedRoundRobinModesTest, CycleAndLiveAgree) {
  std::mt19937_64 random(7);
  std::vector<Instance> instances;
  for (int i = 0; i < 12; ++i) {
    instances.push_back(MakeInstance("i" + std::to_string(i), 1 + random() % 997));
  }
  auto list = ListOf(instances);
  WeightedRoundRobinBalancer cycle(RandomFrom([] { return uint64_t{0}; }));
  WeightedRoundRobinBalancer live({}, 0);
  cycle.Update(list);
  live.Update(list);
  for (int i = 0; i < 20000; ++i) {
    auto a = cycle.Pick({});
    auto b = live.Pick({});
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(a->index(), b->index()) << "pick " << i;
  }
}

// Weights with a cycle too long to precompute (here 10000, 9999, ...: gcd 1,
// a period of about 140k picks) still give exact proportions, from the
// live step.
TEST(WeightedRoundRobinModesTest, LongCycleStaysExact) {
  WeightedRoundRobinBalancer balancer({});
  std::vector<Instance> instances;
  uint64_t total = 0;
  for (uint32_t i = 0; i < 14; ++i) {
    instances.push_back(MakeInstance("i" + std::to_string(i), 10000 - i));
    total += 10000 - i;
  }
  ASSERT_GT(total, WeightedRoundRobinBalancer::kMaxCycleLength);
  balancer.Update(ListOf(instances));
  auto counts = CountPicks(balancer, static_cast<int>(total));
  for (uint32_t i = 0; i < 14; ++i) EXPECT_EQ(counts["i" + std::to_string(i)], int(10000 - i));
}

// In live mode all threads share one sequence under the step lock: picks
// from several threads together are exact over whole cycles.
TEST(WeightedRoundRobinModesTest, LiveSequenceIsSharedByAllThreads) {
  WeightedRoundRobinBalancer balancer({}, 0);
  balancer.Update(ListOf({MakeInstance("a", 3), MakeInstance("b", 2), MakeInstance("c", 1)}));
  std::vector<std::map<std::string, int>> counts(4);
  std::vector<std::thread> threads;
  for (auto& thread_counts : counts) {
    threads.emplace_back([&] { thread_counts = CountPicks(balancer, 6 * 1000); });
  }
  for (auto& thread : threads) thread.join();
  std::map<std::string, int> total;
  for (const auto& thread_counts : counts) {
    for (const auto& [id, count] : thread_counts) total[id] += count;
  }
  EXPECT_EQ(total["a"], 12000);
  EXPECT_EQ(total["b"], 8000);
  EXPECT_EQ(total["c"], 4000);
}

// Live mode under concurrent Picks (some with exclusions) and Updates:
// every pick is an enabled, not excluded instance of a published list.
TEST(WeightedRoundRobinModesTest, LiveModePicksDuringUpdates) {
  WeightedRoundRobinBalancer balancer({}, 0);
  const std::vector<InstanceList> lists = {
      ListOf({MakeInstance("a", 3), MakeInstance("b", 2), MakeInstance("c", 1)}),
      ListOf({MakeInstance("a", 7), MakeInstance("x", 1, InstanceStatus::kDisabled),
              MakeInstance("d", 5)})};
  balancer.Update(lists[0]);
  std::atomic<bool> picking{true};
  std::atomic<int> failures{0};
  std::thread updater([&] {
    for (int round = 0; picking.load(); ++round) {
      balancer.Update(lists[round % 2]);
      std::this_thread::yield();
    }
  });
  std::vector<std::thread> pickers;
  for (int t = 0; t < 3; ++t) {
    pickers.emplace_back([&] {
      for (int i = 0; i < 5000; ++i) {
        PickRequest request;
        if (i % 3 == 0) request.excluded = [](const Instance& in) { return in.id == "a"; };
        auto picked = balancer.Pick(request);
        const bool valid = picked.ok() &&
                           (picked->list() == lists[0] || picked->list() == lists[1]) &&
                           picked->instance().status == InstanceStatus::kEnabled &&
                           !(request.excluded && picked->instance().id == "a");
        if (!valid) ++failures;
      }
    });
  }
  for (auto& picker : pickers) picker.join();
  picking = false;
  updater.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace muster
