// Behaviour every policy shares: the factory, the "nothing to pick" errors,
// disabled and excluded instances, and what a Picked refers to.
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "client/balancers/snapshot_balancer.h"
#include "unit/balancer/balancer_test_util.h"
#include "muster/balancer.h"

namespace muster {
namespace {

using ::testing::HasSubstr;
using testing::Excluding;
using testing::ListOf;
using testing::MakeInstance;
using testing::MustNew;
using testing::TableSize;
using testing::Uniform;
using testing::VirtualNodes;

class EveryPolicyTest : public ::testing::TestWithParam<std::string_view> {
 protected:
  std::unique_ptr<Balancer> balancer_ = MustNew(GetParam());

  // Picks with a varying hash key, so hashing policies visit many instances.
  absl::StatusOr<Picked> PickNumber(uint64_t i, const PickRequest& base = {}) {
    PickRequest request = base;
    request.hash_key = i * 0x9e3779b97f4a7c15ULL;
    return balancer_->Pick(request);
  }
};

INSTANTIATE_TEST_SUITE_P(Policies, EveryPolicyTest, ::testing::ValuesIn(BalancerPolicies()),
                         [](const auto& test) { return std::string(test.param); });

// The factory builds each listed policy, and the balancer reports its name.
TEST_P(EveryPolicyTest, FactoryBuildsPolicyWithItsName) {
  ASSERT_NE(balancer_, nullptr);
  EXPECT_EQ(balancer_->name(), GetParam());
}

// Before any Update there is nothing to pick, and the error says so.
TEST_P(EveryPolicyTest, PickBeforeUpdateIsUnavailable) {
  auto picked = balancer_->Pick({});
  EXPECT_EQ(picked.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(picked.status().message(), "no instances to pick from");
}

// An empty list and a null list both mean no instances.
TEST_P(EveryPolicyTest, EmptyOrNullListIsUnavailable) {
  balancer_->Update(ListOf({}));
  EXPECT_EQ(balancer_->Pick({}).status(), absl::UnavailableError("no instances to pick from"));
  balancer_->Update(nullptr);
  EXPECT_EQ(balancer_->Pick({}).status(), absl::UnavailableError("no instances to pick from"));
}

// When every instance is disabled, the error counts them.
TEST_P(EveryPolicyTest, AllDisabledIsUnavailable) {
  balancer_->Update(ListOf({MakeInstance("a", 100, InstanceStatus::kDisabled),
                            MakeInstance("b", 100, InstanceStatus::kDisabled),
                            MakeInstance("c", 100, InstanceStatus::kDisabled)}));
  EXPECT_EQ(balancer_->Pick({}).status(), absl::UnavailableError("all 3 instances are disabled"));
}

// When every enabled instance is excluded, the error counts the enabled ones.
TEST_P(EveryPolicyTest, AllExcludedIsUnavailable) {
  balancer_->Update(ListOf({MakeInstance("a"), MakeInstance("b", 100, InstanceStatus::kDisabled),
                            MakeInstance("c")}));
  for (uint64_t i = 0; i < 20; ++i) {
    auto picked = PickNumber(i, Excluding([](const Instance&) { return true; }));
    EXPECT_EQ(picked.status(), absl::UnavailableError("all 2 enabled instances are excluded"));
  }
}

// Disabled instances are never handed out; every enabled one is.
TEST_P(EveryPolicyTest, DisabledNeverPicked) {
  std::vector<Instance> instances;
  for (int i = 0; i < 10; ++i) {
    instances.push_back(MakeInstance("i" + std::to_string(i), 100 * (i % 3 + 1),
                                     i % 2 ? InstanceStatus::kDisabled : InstanceStatus::kEnabled));
  }
  balancer_->Update(ListOf(instances));
  std::set<std::string> seen;
  for (uint64_t i = 0; i < 2000; ++i) {
    auto picked = PickNumber(i);
    ASSERT_TRUE(picked.ok()) << picked.status();
    EXPECT_EQ(picked->instance().status, InstanceStatus::kEnabled) << picked->instance().id;
    seen.insert(picked->instance().id);
    balancer_->Done(*picked, true);
  }
  EXPECT_EQ(seen, (std::set<std::string>{"i0", "i2", "i4", "i6", "i8"}));
}

// Excluded instances are never handed out while another one is left, and
// the rest all remain reachable.
TEST_P(EveryPolicyTest, ExcludedNeverPicked) {
  balancer_->Update(Uniform(6));
  const std::set<std::string> excluded = {"i0", "i3", "i4"};
  PickRequest request = Excluding([&](const Instance& i) { return excluded.contains(i.id); });
  std::set<std::string> seen;
  for (uint64_t i = 0; i < 2000; ++i) {
    auto picked = PickNumber(i, request);
    ASSERT_TRUE(picked.ok()) << picked.status();
    EXPECT_FALSE(excluded.contains(picked->instance().id)) << picked->instance().id;
    seen.insert(picked->instance().id);
    balancer_->Done(*picked, true);
  }
  EXPECT_EQ(seen, (std::set<std::string>{"i1", "i2", "i5"}));
}

// With one instance left that is not excluded, every pick finds it.
TEST_P(EveryPolicyTest, LastInstanceNotExcludedIsFound) {
  balancer_->Update(Uniform(50));
  PickRequest request = Excluding([](const Instance& i) { return i.id != "i37"; });
  for (uint64_t i = 0; i < 200; ++i) {
    auto picked = PickNumber(i, request);
    ASSERT_TRUE(picked.ok()) << picked.status();
    EXPECT_EQ(picked->instance().id, "i37");
    balancer_->Done(*picked, true);
  }
}

// A Picked names its position in the list given to Update, and keeps that
// list alive after the balancer moved on to another.
TEST_P(EveryPolicyTest, PickedRefersToPublishedListAndKeepsItAlive) {
  InstanceList first = Uniform(5, "old");
  balancer_->Update(first);
  auto picked = balancer_->Pick({});
  ASSERT_TRUE(picked.ok());
  EXPECT_EQ(picked->list().get(), first.get());
  EXPECT_EQ(&picked->instance(), &(*first)[picked->index()]);
  const std::string id = picked->instance().id;
  std::weak_ptr<const std::vector<Instance>> watch = first;
  first.reset();
  balancer_->Update(Uniform(5, "new"));
  auto next = balancer_->Pick({});
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->instance().id.substr(0, 3), "new");
  EXPECT_FALSE(watch.expired());
  EXPECT_EQ(picked->instance().id, id);
  balancer_->Done(*picked, true);
  balancer_->Done(*next, true);
}

// An `excluded` predicate may itself pick from another balancer, even from
// one that shares this balancer's entry in the thread's snapshot cache (ids
// kThreadCacheSlots apart, so the nested pick takes the entry over): the
// outer pick still returns an instance of its own list, never one it excluded.
TEST_P(EveryPolicyTest, PredicateMayPickFromACollidingBalancer) {
  std::vector<std::unique_ptr<Balancer>> later;  // ids follow balancer_'s, one by one
  for (size_t i = 0; i < kThreadCacheSlots; ++i) later.push_back(MustNew(GetParam(), TableSize(1009)));
  Balancer& colliding = *later.back();
  colliding.Update(Uniform(4, "other"));
  InstanceList mine = Uniform(5);
  balancer_->Update(mine);
  for (uint64_t i = 0; i < 300; ++i) {
    auto picked = PickNumber(i, Excluding([&](const Instance& in) {
                                auto inner = colliding.Pick(testing::Key(i));
                                EXPECT_TRUE(inner.ok()) << inner.status();
                                if (inner.ok()) colliding.Done(*inner, true);
                                return in.id == "i0" || in.id == "i3";
                              }));
    ASSERT_TRUE(picked.ok()) << picked.status();
    EXPECT_EQ(picked->list().get(), mine.get());
    EXPECT_NE(picked->instance().id, "i0");
    EXPECT_NE(picked->instance().id, "i3");
    balancer_->Done(*picked, true);
  }
}

// A single enabled instance is always the pick.
TEST_P(EveryPolicyTest, SingleInstanceAlwaysPicked) {
  balancer_->Update(ListOf({MakeInstance("only", 7)}));
  for (uint64_t i = 0; i < 100; ++i) {
    auto picked = PickNumber(i);
    ASSERT_TRUE(picked.ok());
    EXPECT_EQ(picked->instance().id, "only");
    balancer_->Done(*picked, true);
  }
}

// An unknown policy name is InvalidArgument and lists the known ones.
TEST(NewBalancerTest, UnknownPolicyIsInvalidArgument) {
  auto balancer = NewBalancer("fastest");
  EXPECT_EQ(balancer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(balancer.status().message()), HasSubstr("\"fastest\""));
  EXPECT_THAT(std::string(balancer.status().message()), HasSubstr("round_robin"));
}

// Every documented policy is listed, in the header's order.
TEST(NewBalancerTest, PoliciesListsEveryPolicy) {
  EXPECT_THAT(BalancerPolicies(),
              ::testing::ElementsAre("random", "round_robin", "weighted_random",
                                     "weighted_round_robin", "ring_hash", "maglev",
                                     "least_request"));
}

// A Maglev table size that is not a prime is refused with a suggestion.
TEST(NewBalancerTest, MaglevTableSizeMustBePrime) {
  auto balancer = NewBalancer("maglev", TableSize(65536));
  EXPECT_EQ(balancer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(balancer.status().message()), HasSubstr("try 65537"));
  EXPECT_TRUE(NewBalancer("maglev", TableSize(7)).ok());
  EXPECT_FALSE(NewBalancer("maglev", TableSize(1)).ok());
  EXPECT_FALSE(NewBalancer("maglev", TableSize(5000101)).ok());
}

// A ring without virtual nodes is refused.
TEST(NewBalancerTest, RingNeedsVirtualNodes) {
  auto balancer = NewBalancer("ring_hash", VirtualNodes(0));
  EXPECT_EQ(balancer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(NewBalancer("ring_hash", VirtualNodes(1)).ok());
}

}  // namespace
}  // namespace muster
