// random and weighted_random: picks follow the intended distribution.
//
// Distribution tests draw 100k picks from a seeded generator and require
// both a chi-square statistic below the 0.1% critical value and every
// instance within 3% (relative) of its expected share. With a fixed seed the
// outcome is reproducible; the bounds are ones a correct sampler meets with
// any seed but for one time in a thousand.
#include <cmath>

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
using testing::SeededRandom;
using testing::Uniform;

constexpr int kPicks = 100000;

// Chi-square critical values at p = 0.001, by degrees of freedom.
double ChiSquareCritical(size_t degrees) {
  switch (degrees) {
    case 2: return 13.82;
    case 3: return 16.27;
    case 9: return 27.88;
    default: ADD_FAILURE() << "no critical value for " << degrees; return 0;
  }
}

// Checks counts against expected shares (summing to 1) by id.
void ExpectDistribution(const std::map<std::string, int>& counts,
                        const std::map<std::string, double>& shares, int picks) {
  double chi_square = 0;
  for (const auto& [id, share] : shares) {
    const double expected = share * picks;
    const int observed = counts.contains(id) ? counts.at(id) : 0;
    chi_square += (observed - expected) * (observed - expected) / expected;
    EXPECT_NEAR(observed, expected, 0.03 * expected) << id;
  }
  EXPECT_EQ(counts.size(), shares.size());
  EXPECT_LT(chi_square, ChiSquareCritical(shares.size() - 1));
}

// random spreads picks evenly over the enabled instances.
TEST(RandomBalancerTest, PicksAreUniform) {
  auto balancer = MustNew("random", RandomFrom(SeededRandom(1)));
  balancer->Update(Uniform(10));
  std::map<std::string, double> shares;
  for (int i = 0; i < 10; ++i) shares["i" + std::to_string(i)] = 0.1;
  ExpectDistribution(CountPicks(*balancer, kPicks), shares, kPicks);
}

// random ignores weights.
TEST(RandomBalancerTest, IgnoresWeights) {
  auto balancer = MustNew("random", RandomFrom(SeededRandom(2)));
  balancer->Update(ListOf({MakeInstance("a", 1), MakeInstance("b", 1000), MakeInstance("c", 50)}));
  ExpectDistribution(CountPicks(*balancer, kPicks), {{"a", 1 / 3.0}, {"b", 1 / 3.0}, {"c", 1 / 3.0}},
                     kPicks);
}

// With the default generator (per thread, seeded at random) picks are still
// uniform.
TEST(RandomBalancerTest, DefaultGeneratorIsUniform) {
  auto balancer = MustNew("random");
  balancer->Update(Uniform(4));
  auto counts = CountPicks(*balancer, kPicks);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(counts["i" + std::to_string(i)], kPicks / 4, kPicks / 40);
}

// When the drawn instance is excluded, the pick is uniform over the others.
TEST(RandomBalancerTest, ExcludedPickIsUniformOverTheRest) {
  auto balancer = MustNew("random", RandomFrom(SeededRandom(3)));
  balancer->Update(Uniform(4));
  std::map<std::string, int> counts;
  PickRequest request = Excluding([](const Instance& i) { return i.id == "i0"; });
  for (int i = 0; i < kPicks; ++i) ++counts[balancer->Pick(request)->instance().id];
  ExpectDistribution(counts, {{"i1", 1 / 3.0}, {"i2", 1 / 3.0}, {"i3", 1 / 3.0}}, kPicks);
}

// weighted_random picks in proportion to weight.
TEST(WeightedRandomBalancerTest, PicksFollowWeights) {
  auto balancer = MustNew("weighted_random", RandomFrom(SeededRandom(4)));
  balancer->Update(ListOf({MakeInstance("a", 100), MakeInstance("b", 200), MakeInstance("c", 300),
                           MakeInstance("d", 400)}));
  ExpectDistribution(CountPicks(*balancer, kPicks), {{"a", 0.1}, {"b", 0.2}, {"c", 0.3}, {"d", 0.4}},
                     kPicks);
}

// Extreme weights (1 and 10000) keep their ratio, and disabled instances
// take no share.
TEST(WeightedRandomBalancerTest, ExtremeWeightsAndDisabled) {
  auto balancer = MustNew("weighted_random", RandomFrom(SeededRandom(5)));
  balancer->Update(ListOf({MakeInstance("light", 1), MakeInstance("heavy", 10000),
                           MakeInstance("off", 10000, InstanceStatus::kDisabled)}));
  constexpr int kMany = 500000;
  auto counts = CountPicks(*balancer, kMany);
  EXPECT_EQ(counts.count("off"), 0u);
  // Expected 500000 / 10001 = 50 light picks; 5 sigma is about 35.
  EXPECT_NEAR(counts["light"], 50, 35);
}

// When the drawn instance is excluded, the pick follows the weights of the
// others.
TEST(WeightedRandomBalancerTest, ExcludedPickFollowsWeightsOfTheRest) {
  auto balancer = MustNew("weighted_random", RandomFrom(SeededRandom(6)));
  balancer->Update(ListOf({MakeInstance("a", 500), MakeInstance("b", 100), MakeInstance("c", 300),
                           MakeInstance("d", 600)}));
  PickRequest request = Excluding([](const Instance& i) { return i.id == "d"; });
  std::map<std::string, int> counts;
  for (int i = 0; i < kPicks; ++i) ++counts[balancer->Pick(request)->instance().id];
  ExpectDistribution(counts, {{"a", 5 / 9.0}, {"b", 1 / 9.0}, {"c", 3 / 9.0}}, kPicks);
}

}  // namespace
}  // namespace muster
