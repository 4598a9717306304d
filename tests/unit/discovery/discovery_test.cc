#include "muster/discovery.h"

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "client/memory_registry.h"
#include "muster/clock.h"
#include "support/status_matchers.h"
#include "unit/discovery/test_registry.h"

namespace muster {
namespace {

using ::muster::testing::Eventually;
using ::muster::testing::IsOk;
using ::muster::testing::MakeInstance;
using ::muster::testing::Service;
using ::muster::testing::Options;
using ::muster::testing::HashKey;
using ::muster::testing::Only;
using ::muster::testing::OverlayRegistry;
using ::muster::testing::ScriptedRegistry;
using ::muster::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> Ids(const InstanceList& list) {
  std::vector<std::string> ids;
  for (const Instance& in : *list) ids.push_back(in.id);
  return ids;
}

// Counts the list calls that reach the registry, to show Discovery never polls.
class CountingRegistry final : public Registry {
 public:
  explicit CountingRegistry(Registry* inner) : inner_(inner) {}
  absl::StatusOr<Instance> Register(const Instance& i, const CallOptions& o) override {
    return inner_->Register(i, o);
  }
  absl::Status Deregister(const InstanceKey& k, const CallOptions& o) override {
    return inner_->Deregister(k, o);
  }
  absl::Status UpdateService(const InstanceKey& k, const CallOptions& o) override {
    return inner_->UpdateService(k, o);
  }
  absl::StatusOr<ServiceList> ListServices(const ServiceQuery& q, const CallOptions& o) override {
    ++lists;
    return inner_->ListServices(q, o);
  }
  absl::StatusOr<SubscriptionId> Subscribe(const ServiceQuery& q, WatchCallback cb) override {
    ++subscribes;
    return inner_->Subscribe(q, std::move(cb));
  }
  void Unsubscribe(SubscriptionId id) override {
    ++unsubscribes;
    inner_->Unsubscribe(id);
  }
  void Close() override { inner_->Close(); }

  std::atomic<int> lists{0};
  std::atomic<int> subscribes{0};
  std::atomic<int> unsubscribes{0};

 private:
  Registry* const inner_;
};

class DiscoveryTest : public ::testing::Test {
 protected:
  void Register(const Instance& in) { ASSERT_THAT(memory_->Register(in, {}), IsOk()); }
  void Register(const std::string& id, int port) { Register(MakeInstance("orders", id, port)); }

  // The ids in the cached view of "orders", or an empty list on error.
  std::vector<std::string> CachedIds(Discovery& discovery, bool healthy = false) {
    auto s = discovery.Get(Service("orders"));
    if (!s.ok()) return {};
    return Ids(healthy ? (*s)->healthy : (*s)->instances);
  }

  // Every test's leases and caches run on clock_: time passes only when a
  // test advances it.
  DiscoveryOptions On(DiscoveryOptions options) {
    options.clock = &clock_;
    return options;
  }

  ManualClock clock_;
  std::unique_ptr<Registry> memory_ =
      NewMemoryRegistry({.sweep_interval = std::chrono::hours(1), .clock = &clock_});
  OverlayRegistry registry_{memory_.get()};
};

// The first Get subscribes and returns the registry's current list.
TEST_F(DiscoveryTest, FirstGetReturnsCurrentList) {
  Register("o2", 9002);
  Register("o1", 9001);
  Discovery discovery(&registry_, {});
  auto snapshot = discovery.Get(Service("orders"));
  ASSERT_THAT(snapshot, IsOk());
  EXPECT_THAT(Ids((*snapshot)->instances), ElementsAre("o1", "o2"));
  EXPECT_THAT(Ids((*snapshot)->healthy), ElementsAre("o1", "o2"));
  EXPECT_GT((*snapshot)->revision, 0u);
  EXPECT_FALSE((*snapshot)->stale);
  EXPECT_FALSE((*snapshot)->protected_mode);
}

// An unknown service is followed as an empty list, not an error, so a client
// can start before the service's first instance.
TEST_F(DiscoveryTest, UnknownServiceIsEmpty) {
  Discovery discovery(&registry_, {});
  auto snapshot = discovery.Get(Service("orders"));
  ASSERT_THAT(snapshot, IsOk());
  EXPECT_TRUE((*snapshot)->instances->empty());
  EXPECT_THAT(discovery.Pick(Service("orders")),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("orders")));
}

// After the first list, registrations and removals reach the cache through the
// subscription: the registry is never listed.
TEST_F(DiscoveryTest, FollowsChangesWithoutPolling) {
  CountingRegistry counting(memory_.get());
  Register("o1", 9001);
  Discovery discovery(&counting, {});
  ASSERT_THAT(CachedIds(discovery), ElementsAre("o1"));

  Register("o2", 9002);
  EXPECT_TRUE(Eventually([&] { return CachedIds(discovery).size() == 2; }));
  EXPECT_THAT(CachedIds(discovery), ElementsAre("o1", "o2"));

  ASSERT_THAT(memory_->Deregister({"default", "orders", "o1"}, {}), IsOk());
  EXPECT_TRUE(Eventually([&] { return CachedIds(discovery).size() == 1; }));
  EXPECT_THAT(CachedIds(discovery), ElementsAre("o2"));

  // Picks follow the changes too.
  for (int i = 0; i < 10; ++i) {
    auto picked = discovery.Pick(Service("orders"));
    ASSERT_THAT(picked, IsOk());
    EXPECT_EQ(picked->instance().id, "o2");
  }
  EXPECT_EQ(counting.lists.load(), 0);
  EXPECT_EQ(counting.subscribes.load(), 1);
}

// An instance whose lease lapses leaves the cache.
TEST_F(DiscoveryTest, ExpiredInstanceLeaves) {
  Register(MakeInstance("orders", "o1", 9001, /*ttl_seconds=*/1));
  Register("o2", 9002);
  Discovery discovery(&registry_, On({}));
  ASSERT_EQ(CachedIds(discovery).size(), 2u);
  clock_.Advance(std::chrono::seconds(1));
  ASSERT_EQ(client::SweepMemoryRegistryNow(*memory_), 1u);
  EXPECT_TRUE(Eventually([&] { return CachedIds(discovery).size() == 1; }));
  EXPECT_THAT(CachedIds(discovery), ElementsAre("o2"));
}

// A disabled instance is known but never handed out.
TEST_F(DiscoveryTest, DisabledInstanceIsNotHandedOut) {
  Register("o1", 9001);
  Instance off = MakeInstance("orders", "o2", 9002);
  off.status = InstanceStatus::kDisabled;
  Register(off);
  Discovery discovery(&registry_, {});
  EXPECT_THAT(CachedIds(discovery), ElementsAre("o1", "o2"));
  EXPECT_THAT(CachedIds(discovery, /*healthy=*/true), ElementsAre("o1"));
  for (int i = 0; i < 20; ++i) {
    auto picked = discovery.Pick(Service("orders"));
    ASSERT_THAT(picked, IsOk());
    EXPECT_EQ(picked->instance().id, "o1");
  }
}

// Every balancer policy picks only healthy instances: not disabled ones, not
// critical ones.
TEST_F(DiscoveryTest, EveryPolicyPicksOnlyHealthyInstances) {
  Register("a", 9001);
  Register("b", 9002);
  Register("c", 9003);
  Instance off = MakeInstance("orders", "d", 9004);
  off.status = InstanceStatus::kDisabled;
  Register(off);
  Instance sick = MakeInstance("orders", "e", 9005);
  sick.metadata[testing::kHealthKey] = "critical";
  Register(sick);

  for (std::string_view policy : BalancerPolicies()) {
    SCOPED_TRACE(policy);
    Discovery discovery(&registry_, Options(std::string(policy)));
    std::set<std::string> seen;
    for (uint64_t i = 0; i < 300; ++i) {
      auto picked = discovery.Pick(Service("orders"), HashKey(i * 0x9e3779b97f4a7c15ULL));
      ASSERT_THAT(picked, IsOk());
      seen.insert(picked->instance().id);
      discovery.Done(Service("orders"), *picked, true);
    }
    EXPECT_THAT(seen, ElementsAre("a", "b", "c"));
  }
}

// An unknown balancer policy is an error on first use, not a crash.
TEST_F(DiscoveryTest, UnknownPolicyIsInvalidArgument) {
  Discovery discovery(&registry_, Options("fastest"));
  EXPECT_THAT(discovery.Pick(Service("orders")),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
}

// Below the protect threshold every enabled instance is handed out, the
// critical ones included; above it, only the healthy ones.
TEST_F(DiscoveryTest, ProtectThresholdHandsOutAllEnabledInstances) {
  Register("o1", 9001);
  for (const char* id : {"o2", "o3"}) {
    Instance sick = MakeInstance("orders", id, 9002);
    sick.metadata[testing::kHealthKey] = "critical";
    Register(sick);
  }
  Instance off = MakeInstance("orders", "o4", 9004);
  off.status = InstanceStatus::kDisabled;
  Register(off);

  Discovery discovery(&registry_, Options("round_robin", 0.5));
  auto snapshot = discovery.Get(Service("orders"));
  ASSERT_THAT(snapshot, IsOk());
  // 1 healthy of 3 enabled < 0.5: protected.
  EXPECT_TRUE((*snapshot)->protected_mode);
  EXPECT_THAT(Ids((*snapshot)->healthy), ElementsAre("o1", "o2", "o3"));
  std::set<std::string> seen;
  for (int i = 0; i < 30; ++i) {
    auto picked = discovery.Pick(Service("orders"));
    ASSERT_THAT(picked, IsOk());
    seen.insert(picked->instance().id);
  }
  EXPECT_THAT(seen, ElementsAre("o1", "o2", "o3"));

  // 2 healthy of 3 enabled >= 0.5: only the healthy ones.
  Register("o5", 9005);
  ASSERT_TRUE(Eventually([&] { return CachedIds(discovery).size() == 5; }));
  snapshot = discovery.Get(Service("orders"));
  ASSERT_THAT(snapshot, IsOk());
  EXPECT_FALSE((*snapshot)->protected_mode);
  EXPECT_THAT(Ids((*snapshot)->healthy), ElementsAre("o1", "o5"));
}

// With the threshold off (0), critical instances are never handed out.
TEST_F(DiscoveryTest, NoThresholdNeverHandsOutCritical) {
  Instance sick = MakeInstance("orders", "o1", 9001);
  sick.metadata[testing::kHealthKey] = "critical";
  Register(sick);
  Discovery discovery(&registry_, {});
  auto snapshot = discovery.Get(Service("orders"));
  ASSERT_THAT(snapshot, IsOk());
  EXPECT_FALSE((*snapshot)->protected_mode);
  EXPECT_TRUE((*snapshot)->healthy->empty());
  EXPECT_THAT(discovery.Pick(Service("orders")), StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
}

// When the backend reports the registry unreachable, the last list is still
// served, marked stale; the next good update clears the mark.
TEST_F(DiscoveryTest, OutageServesLastListAsStale) {
  Register("o1", 9001);
  Discovery discovery(&registry_, On({}));
  auto before = discovery.Get(Service("orders"));
  ASSERT_THAT(before, IsOk());
  EXPECT_EQ((*before)->updated_at, clock_.Now());

  clock_.Advance(std::chrono::seconds(5));
  registry_.InjectOutage(absl::UnavailableError("connection refused"));
  auto stale = discovery.Get(Service("orders"));
  ASSERT_THAT(stale, IsOk());
  EXPECT_TRUE((*stale)->stale);
  EXPECT_EQ((*stale)->stale_since, (*before)->updated_at + std::chrono::seconds(5));
  EXPECT_EQ((*stale)->updated_at, (*before)->updated_at);
  EXPECT_THAT(Ids((*stale)->instances), ElementsAre("o1"));
  auto picked = discovery.Pick(Service("orders"));
  ASSERT_THAT(picked, IsOk());
  EXPECT_EQ(picked->instance().id, "o1");

  // A second failure keeps the first stale_since.
  clock_.Advance(std::chrono::seconds(5));
  registry_.InjectOutage(absl::UnavailableError("still down"));
  auto still = discovery.Get(Service("orders"));
  ASSERT_THAT(still, IsOk());
  EXPECT_EQ((*still)->stale_since, (*stale)->stale_since);

  Register("o2", 9002);
  ASSERT_TRUE(Eventually([&] { return CachedIds(discovery).size() == 2; }));
  auto after = discovery.Get(Service("orders"));
  ASSERT_THAT(after, IsOk());
  EXPECT_FALSE((*after)->stale);
  EXPECT_EQ((*after)->updated_at, (*before)->updated_at + std::chrono::seconds(10));
}

// A published snapshot is immutable: a holder's copy does not change under it.
TEST_F(DiscoveryTest, SnapshotsAreImmutable) {
  Register("o1", 9001);
  Discovery discovery(&registry_, {});
  auto first = discovery.Get(Service("orders"));
  ASSERT_THAT(first, IsOk());
  Register("o2", 9002);
  ASSERT_TRUE(Eventually([&] { return CachedIds(discovery).size() == 2; }));
  EXPECT_THAT(Ids((*first)->instances), ElementsAre("o1"));
}

// A version query sees only that version.
TEST_F(DiscoveryTest, VersionQuerySeesOnlyThatVersion) {
  Instance v1 = MakeInstance("orders", "o1", 9001);
  v1.version = "v1";
  Instance v2 = MakeInstance("orders", "o2", 9002);
  v2.version = "v2";
  Register(v1);
  Register(v2);
  Discovery discovery(&registry_, {});
  auto snapshot = discovery.Get(Service("orders", "v2"));
  ASSERT_THAT(snapshot, IsOk());
  EXPECT_THAT(Ids((*snapshot)->instances), ElementsAre("o2"));
  auto all = discovery.Get(Service("orders"));
  ASSERT_THAT(all, IsOk());
  EXPECT_EQ((*all)->instances->size(), 2u);
}

// Forget stops following; the next use follows again from a fresh list.
TEST_F(DiscoveryTest, ForgetThenGetFollowsAgain) {
  CountingRegistry counting(memory_.get());
  Register("o1", 9001);
  Discovery discovery(&counting, {});
  ASSERT_THAT(CachedIds(discovery), ElementsAre("o1"));
  discovery.Forget(Service("orders"));
  discovery.Forget(Service("orders"));  // idempotent
  EXPECT_EQ(counting.unsubscribes.load(), 1);
  Register("o2", 9002);
  EXPECT_THAT(CachedIds(discovery), ElementsAre("o1", "o2"));
  EXPECT_EQ(counting.subscribes.load(), 2);
}

// A subscription the registry refuses is returned by Get and Pick.
TEST_F(DiscoveryTest, ClosedRegistryIsAnError) {
  memory_->Close();
  Discovery discovery(&registry_, {});
  EXPECT_THAT(discovery.Get(Service("orders")),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("orders")));
  EXPECT_THAT(discovery.Pick(Service("orders")),
              StatusIs(absl::StatusCode::kFailedPrecondition, ::testing::_));
  EXPECT_THAT(discovery.Get(Service("")), StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
}

// Many threads pick while instances come and go, and other services are
// followed and forgotten: every pick is an instance the service had.
TEST_F(DiscoveryTest, ConcurrentPicksDuringChanges) {
  for (int i = 0; i < 4; ++i) Register("base" + std::to_string(i), 9000 + i);
  Discovery discovery(&registry_, Options("random"));
  ASSERT_THAT(discovery.Get(Service("orders")), IsOk());

  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> pickers;
  for (int t = 0; t < 4; ++t) {
    pickers.emplace_back([&] {
      while (!stop.load()) {
        auto picked = discovery.Pick(Service("orders"));
        if (!picked.ok() || picked->instance().service != "orders") ++bad;
        if (picked.ok()) discovery.Done(Service("orders"), *picked, true);
      }
    });
  }
  for (int i = 0; i < 50; ++i) {
    Register("extra" + std::to_string(i % 5), 9100 + i % 5);
    if (i % 3 == 0) {
      ASSERT_THAT(memory_->Deregister({"default", "orders", "extra" + std::to_string(i % 5)}, {}),
                  IsOk());
    }
    ServiceQuery other = Service("other" + std::to_string(i % 3));
    ASSERT_THAT(discovery.Get(other), IsOk());
    if (i % 2 == 0) discovery.Forget(other);
  }
  stop = true;
  for (auto& t : pickers) t.join();
  EXPECT_EQ(bad.load(), 0);
}

// Destroying a Discovery ends its subscriptions: later changes do not call
// into freed memory (ASan would say), and a new Discovery starts afresh.
TEST_F(DiscoveryTest, DestructionEndsSubscriptions) {
  Register("o1", 9001);
  CountingRegistry counting(&registry_);
  {
    Discovery discovery(&counting, {});
    ASSERT_THAT(discovery.Get(Service("orders")), IsOk());
    ASSERT_THAT(discovery.Get(Service("billing")), IsOk());
  }
  EXPECT_EQ(counting.subscribes.load(), 2);
  EXPECT_EQ(counting.unsubscribes.load(), 2);
  // Changes after the Discovery is gone reach nobody.
  Register("o2", 9002);
  Discovery second(&registry_, {});
  EXPECT_THAT(CachedIds(second), ElementsAre("o1", "o2"));
}

// The first use waits up to first_list_timeout for the first list, then
// fails with Unavailable; the subscription stays, and the next use succeeds
// as soon as a list came.
TEST(DiscoveryFirstListTest, WaitsForFirstListThenFailsAndKeepsFollowing) {
  ScriptedRegistry registry;
  ManualClock clock;
  DiscoveryOptions options;
  options.first_list_timeout = std::chrono::milliseconds(300);
  options.clock = &clock;
  Discovery discovery(&registry, options);
  // The first use waits on the clock: still waiting after 299 ms, given up
  // at 300 ms.
  std::atomic<bool> timeout_reached{false};
  std::thread time([&] {
    if (!Eventually([&] { return clock.parked() == 1; })) return;
    clock.Advance(std::chrono::milliseconds(299));
    if (!Eventually([&] { return clock.parked() == 1; })) return;  // waits on
    timeout_reached = true;
    clock.Advance(std::chrono::milliseconds(1));
  });
  EXPECT_THAT(discovery.Get(Service("orders")),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("300 ms")));
  time.join();
  EXPECT_TRUE(timeout_reached);
  ASSERT_EQ(registry.subscriptions(), 1u);

  WatchUpdate first;
  first.snapshot = true;
  first.revision = 7;
  first.instances = {MakeInstance("orders", "o1", 9001)};
  registry.Deliver(first);
  auto snapshot = discovery.Get(Service("orders"));
  ASSERT_THAT(snapshot, IsOk());
  EXPECT_THAT(Ids((*snapshot)->instances), ElementsAre("o1"));
  EXPECT_EQ((*snapshot)->revision, 7u);
  EXPECT_EQ(registry.subscriptions(), 1u);  // the same subscription
}

// An outage reported before the first list fails the waiting first use at
// once, not after first_list_timeout.
TEST(DiscoveryFirstListTest, OutageBeforeFirstListFailsAtOnce) {
  ScriptedRegistry registry;
  DiscoveryOptions options;
  options.first_list_timeout = std::chrono::seconds(30);
  Discovery discovery(&registry, options);
  std::thread outage([&] {
    if (!Eventually([&] { return registry.subscriptions() == 1; })) return;
    WatchUpdate down;
    down.status = absl::UnavailableError("connection refused");
    registry.Deliver(down);
  });
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THAT(discovery.Pick(Service("orders")),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("connection refused")));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  outage.join();
}

// The musterd backend's update after an outage that lost nothing (OK, no
// snapshot, no changes) clears the stale mark and keeps the list.
TEST(DiscoveryFirstListTest, EmptyUpdateAfterOutageClearsStale) {
  ScriptedRegistry registry;
  Discovery discovery(&registry, {});
  std::thread feed([&] {
    if (!Eventually([&] { return registry.subscriptions() == 1; })) return;
    WatchUpdate first;
    first.snapshot = true;
    first.revision = 7;
    first.instances = {MakeInstance("orders", "o1", 9001)};
    registry.Deliver(first);
  });
  auto before = discovery.Get(Service("orders"));
  feed.join();
  ASSERT_THAT(before, IsOk());

  WatchUpdate down;
  down.status = absl::UnavailableError("connection refused");
  registry.Deliver(down);
  auto stale = discovery.Get(Service("orders"));
  ASSERT_THAT(stale, IsOk());
  EXPECT_TRUE((*stale)->stale);

  WatchUpdate back;
  back.revision = 7;
  registry.Deliver(back);
  auto after = discovery.Get(Service("orders"));
  ASSERT_THAT(after, IsOk());
  EXPECT_FALSE((*after)->stale);
  EXPECT_EQ((*after)->revision, 7u);
  EXPECT_THAT(Ids((*after)->instances), ElementsAre("o1"));
  EXPECT_GE((*after)->updated_at, (*stale)->stale_since);
  auto picked = discovery.Pick(Service("orders"));
  ASSERT_THAT(picked, IsOk());
  EXPECT_EQ(picked->instance().id, "o1");
}

}  // namespace
}  // namespace muster
