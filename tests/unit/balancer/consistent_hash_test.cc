// ring_hash and maglev: consistent hashing. The same key goes to the same
// instance; when an instance leaves, (almost) only its keys move; keys
// spread evenly, and by weight.
//
// Checked over 10k keys (0..9999; the balancers mix keys, so sequential
// keys are as good as random ones). The bounds stated per test hold for the
// fixed ids used here; they are the properties each algorithm promises,
// with margin.
#include <algorithm>
#include <cmath>
#include <random>

#include <gtest/gtest.h>

#include "client/balancers/ring_hash.h"
#include "unit/balancer/balancer_test_util.h"

namespace muster {
namespace {

using testing::Excluding;
using testing::ListOf;
using testing::MakeInstance;
using testing::MustNew;
using testing::Placement;
using testing::TableSize;
using testing::Uniform;
using testing::VirtualNodes;

constexpr size_t kKeys = 10000;

std::map<std::string, int> Tally(const std::vector<std::string>& placement) {
  std::map<std::string, int> counts;
  for (const auto& id : placement) ++counts[id];
  return counts;
}

// The largest relative deviation of any instance from an even share.
double WorstImbalance(const std::map<std::string, int>& counts, double instances) {
  const double fair = double(kKeys) / instances;
  double worst = 0;
  for (const auto& [id, count] : counts) worst = std::max(worst, std::abs(count - fair) / fair);
  return worst;
}

class ConsistentHashTest : public ::testing::TestWithParam<std::string_view> {
 protected:
  // Share of the keys that moved, among those that were not on `removed`,
  // when it leaves. 0 for ring_hash; small for maglev.
  double ExtraDisruption(const std::vector<std::string>& before,
                         const std::vector<std::string>& after, const std::string& removed) {
    size_t stayed_on_others = 0, moved = 0;
    for (size_t key = 0; key < kKeys; ++key) {
      EXPECT_NE(after[key], removed);
      if (before[key] == removed) continue;
      ++stayed_on_others;
      if (after[key] != before[key]) ++moved;
    }
    return double(moved) / double(stayed_on_others);
  }

  // maglev's bound on ExtraDisruption: the paper's "minimal" disruption is
  // approximate; with M = 65537 and 10 to 100 instances 0.2% to 0.6% of the
  // other keys move (measured). ring_hash moves none.
  double DisruptionBound() const { return GetParam() == "maglev" ? 0.02 : 0.0; }
};

INSTANTIATE_TEST_SUITE_P(Policies, ConsistentHashTest, ::testing::Values("ring_hash", "maglev"),
                         [](const auto& test) { return std::string(test.param); });

// The same key goes to the same instance, pick after pick, and in another
// balancer (another client) given the same instances in another order.
TEST_P(ConsistentHashTest, SameKeySameInstanceInEveryClient) {
  auto balancer = MustNew(GetParam());
  std::vector<Instance> instances = *Uniform(10);
  balancer->Update(ListOf(instances));
  const auto first = Placement(*balancer, kKeys);
  EXPECT_EQ(Placement(*balancer, kKeys), first);

  std::shuffle(instances.begin(), instances.end(), std::mt19937_64(1));
  auto other = MustNew(GetParam());
  other->Update(ListOf(instances));
  EXPECT_EQ(Placement(*other, kKeys), first);
}

// When an instance leaves, its keys move to others and (almost) no others
// move.
TEST_P(ConsistentHashTest, RemovingInstanceMovesOnlyItsKeys) {
  auto balancer = MustNew(GetParam());
  std::vector<Instance> instances = *Uniform(10);
  balancer->Update(ListOf(instances));
  const auto before = Placement(*balancer, kKeys);
  for (const char* removed : {"i3", "i0", "i9"}) {
    std::vector<Instance> fewer;
    for (const auto& instance : instances) {
      if (instance.id != removed) fewer.push_back(instance);
    }
    balancer->Update(ListOf(fewer));
    EXPECT_LE(ExtraDisruption(before, Placement(*balancer, kKeys), removed), DisruptionBound())
        << removed;
  }
}

// Disabling an instance is the same as removing it.
TEST_P(ConsistentHashTest, DisablingInstanceMovesOnlyItsKeys) {
  auto balancer = MustNew(GetParam());
  std::vector<Instance> instances = *Uniform(10);
  balancer->Update(ListOf(instances));
  const auto before = Placement(*balancer, kKeys);
  instances[4].status = InstanceStatus::kDisabled;
  balancer->Update(ListOf(instances));
  EXPECT_LE(ExtraDisruption(before, Placement(*balancer, kKeys), "i4"), DisruptionBound());
}

// When an instance joins, keys move only onto it (within the bound).
TEST_P(ConsistentHashTest, AddingInstanceTakesKeysOnlyForItself) {
  auto balancer = MustNew(GetParam());
  balancer->Update(Uniform(10));
  const auto before = Placement(*balancer, kKeys);
  balancer->Update(Uniform(11));
  const auto after = Placement(*balancer, kKeys);
  size_t moved_elsewhere = 0, to_new = 0;
  for (size_t key = 0; key < kKeys; ++key) {
    if (after[key] == "i10") {
      ++to_new;
    } else if (after[key] != before[key]) {
      ++moved_elsewhere;
    }
  }
  EXPECT_LE(double(moved_elsewhere) / kKeys, DisruptionBound());
  EXPECT_NEAR(double(to_new) / kKeys, 1 / 11.0, 0.04);
}

// Keys spread evenly: ring_hash within 35% of an even share at 100 virtual
// nodes per instance (a share varies by about 1/sqrt(100) = 10%, and this is
// the worst of 10; measured 24%), maglev within 10% (its table is balanced to
// one slot; what is left is the sampling noise of 10k keys, 3% per share).
TEST_P(ConsistentHashTest, KeysSpreadEvenly) {
  auto balancer = MustNew(GetParam());
  balancer->Update(Uniform(10));
  auto counts = Tally(Placement(*balancer, kKeys));
  EXPECT_EQ(counts.size(), 10u);
  EXPECT_LE(WorstImbalance(counts, 10), GetParam() == "maglev" ? 0.10 : 0.35);
}

// More virtual nodes give a more even ring.
TEST(RingHashBalancerTest, MoreVirtualNodesSpreadMoreEvenly) {
  auto balancer = MustNew("ring_hash", VirtualNodes(2000));
  balancer->Update(Uniform(10));
  EXPECT_LE(WorstImbalance(Tally(Placement(*balancer, kKeys)), 10), 0.10);
}

// Keys follow weights: weight 300 takes about three times the keys of 100.
TEST_P(ConsistentHashTest, KeysFollowWeights) {
  auto balancer = MustNew(GetParam());
  std::vector<Instance> instances;
  for (int i = 0; i < 8; ++i) instances.push_back(MakeInstance("i" + std::to_string(i), 100));
  instances.push_back(MakeInstance("heavy", 300));
  instances.push_back(MakeInstance("light", 50));
  balancer->Update(ListOf(instances));
  auto counts = Tally(Placement(*balancer, kKeys));
  // Total weight 1150: heavy expects 300/1150 = 26.1%, light 4.3%.
  EXPECT_NEAR(counts["heavy"] / double(kKeys), 300 / 1150.0, 0.04);
  EXPECT_NEAR(counts["light"] / double(kKeys), 50 / 1150.0, 0.02);
}

// An excluded instance's keys go to a stable fallback: the same key with
// the same exclusion always lands on the same other instance, and keys not
// on the excluded instance stay put.
TEST_P(ConsistentHashTest, ExcludedKeysHaveStableFallback) {
  auto balancer = MustNew(GetParam());
  balancer->Update(Uniform(10));
  const auto before = Placement(*balancer, kKeys);
  PickRequest request = Excluding([](const Instance& i) { return i.id == "i5"; });
  for (size_t key = 0; key < 2000; ++key) {
    request.hash_key = key;
    auto first = balancer->Pick(request);
    auto again = balancer->Pick(request);
    ASSERT_TRUE(first.ok() && again.ok());
    EXPECT_NE(first->instance().id, "i5");
    EXPECT_EQ(first->instance().id, again->instance().id);
    if (before[key] != "i5") {
      EXPECT_EQ(first->instance().id, before[key]);
    }
  }
}

// On the ring, excluding an instance sends its keys exactly where they go
// when it leaves.
TEST(RingHashBalancerTest, ExclusionMatchesRemoval) {
  auto balancer = MustNew("ring_hash");
  std::vector<Instance> instances = *Uniform(10);
  balancer->Update(ListOf(instances));
  std::vector<std::string> excluded;
  for (size_t key = 0; key < kKeys; ++key) {
    auto picked = balancer->Pick(
        Excluding([](const Instance& i) { return i.id == "i2"; }, key));
    excluded.push_back(picked->instance().id);
  }
  instances.erase(instances.begin() + 2);
  balancer->Update(ListOf(instances));
  EXPECT_EQ(Placement(*balancer, kKeys), excluded);
}

// A weight sum beyond the ring's cap is scaled down to the cap, keeping
// proportions.
TEST(RingHashBalancerTest, RingCapKeepsProportions) {
  RingHashBalancer balancer(VirtualNodes(10000), /*max_points=*/20000);
  std::vector<Instance> instances;
  for (int i = 0; i < 20; ++i) instances.push_back(MakeInstance("i" + std::to_string(i), 10000));
  instances.push_back(MakeInstance("small", 5000));
  balancer.Update(ListOf(instances));  // 20.5M virtual nodes asked; 20000 kept
  auto counts = Tally(Placement(balancer, kKeys));
  EXPECT_NEAR(counts["small"] / double(kKeys), 0.5 / 20.5, 0.01);
  for (int i = 0; i < 20; ++i) {
    EXPECT_NEAR(counts["i" + std::to_string(i)] / double(kKeys), 1 / 20.5, 0.015) << i;
  }
}

// maglev's table holds every instance within one slot of its fair share.
TEST(MaglevBalancerTest, SmallTableIsBalancedToOneSlot) {
  auto balancer = MustNew("maglev", TableSize(101));
  balancer->Update(Uniform(10));
  // With 101 slots, a key maps to slot floor(mix * 101 / 2^64); 101000 keys
  // visit every slot about 1000 times, so counts show slots per instance.
  std::map<std::string, int> counts = Tally(Placement(*balancer, 101000));
  ASSERT_EQ(counts.size(), 10u);
  for (const auto& [id, count] : counts) {
    const long slots = std::lround(count / 1000.0);
    EXPECT_TRUE(slots == 10 || slots == 11) << id << " holds about " << slots << " slots";
  }
}

// With more instances than table slots, the table grows so none is left out.
TEST(MaglevBalancerTest, MoreInstancesThanSlotsAllReachable) {
  auto balancer = MustNew("maglev", TableSize(7));
  balancer->Update(Uniform(20));
  EXPECT_EQ(Tally(Placement(*balancer, 20000)).size(), 20u);
}

}  // namespace
}  // namespace muster
