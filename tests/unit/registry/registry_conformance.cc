#include "unit/registry/registry_conformance.h"

#include <algorithm>
#include <cstdio>
#include <atomic>
#include <iostream>
#include <set>
#include <thread>
#include <utility>

#include <gmock/gmock.h>

#include "support/status_matchers.h"

namespace muster::testing {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::_;

void RegistryHarness::AdvanceTime(std::chrono::milliseconds duration) {
  std::this_thread::sleep_for(duration);
}

namespace {

class FactoryHarness final : public RegistryHarness {
 public:
  explicit FactoryHarness(std::function<std::unique_ptr<Registry>()> factory)
      : factory_(std::move(factory)) {}
  std::unique_ptr<Registry> NewRegistry() override { return factory_(); }

 private:
  std::function<std::unique_ptr<Registry>()> factory_;
};

std::vector<ChangeType> TypesOf(const std::vector<Change>& changes) {
  std::vector<ChangeType> out;
  for (const Change& c : changes) out.push_back(c.type);
  return out;
}

std::vector<std::string> ChangedIds(const std::vector<Change>& changes) {
  std::vector<std::string> out;
  for (const Change& c : changes) out.push_back(c.instance.id);
  return out;
}

bool HasFailedUpdate(const std::vector<WatchUpdate>& updates) {
  return std::any_of(updates.begin(), updates.end(),
                     [](const WatchUpdate& u) { return !u.status.ok(); });
}

}  // namespace

RegistryBackend BackendFromFactory(std::string name,
                                   std::function<std::unique_ptr<Registry>()> factory) {
  return RegistryBackend{std::move(name), [factory = std::move(factory)] {
                           return std::make_unique<FactoryHarness>(factory);
                         }};
}

void PrintTo(const RegistryBackend& backend, std::ostream* os) { *os << backend.name; }

std::string BackendName(const ::testing::TestParamInfo<RegistryBackend>& info) {
  return info.param.name;
}

// ---------------------------------------------------------------------------
// UpdateRecorder.

WatchCallback UpdateRecorder::Callback() {
  return [this](const WatchUpdate& update) {
    {
      std::lock_guard lock(mu_);
      updates_.push_back(update);
    }
    cv_.notify_all();
  };
}

bool UpdateRecorder::WaitUntil(
    const std::function<bool(const std::vector<WatchUpdate>&)>& predicate,
    std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return predicate(updates_); });
}

bool UpdateRecorder::WaitForCount(size_t n, std::chrono::milliseconds timeout) {
  return WaitUntil([n](const std::vector<WatchUpdate>& u) { return u.size() >= n; }, timeout);
}

bool UpdateRecorder::WaitForChange(const std::function<bool(const Change&)>& predicate,
                                   std::chrono::milliseconds timeout) {
  return WaitUntil(
      [&](const std::vector<WatchUpdate>& updates) {
        for (const WatchUpdate& u : updates) {
          if (!u.status.ok() || u.snapshot) continue;
          for (const Change& c : u.changes) {
            if (predicate(c)) return true;
          }
        }
        return false;
      },
      timeout);
}

std::vector<WatchUpdate> UpdateRecorder::updates() const {
  std::lock_guard lock(mu_);
  return updates_;
}

std::vector<Change> UpdateRecorder::changes() const {
  std::lock_guard lock(mu_);
  std::vector<Change> out;
  for (const WatchUpdate& u : updates_) {
    if (!u.status.ok() || u.snapshot) continue;
    out.insert(out.end(), u.changes.begin(), u.changes.end());
  }
  return out;
}

std::map<std::string, Instance> UpdateRecorder::View() const {
  std::lock_guard lock(mu_);
  std::map<std::string, Instance> view;
  for (const WatchUpdate& u : updates_) {
    if (!u.status.ok()) continue;
    if (u.snapshot) {
      view.clear();
      for (const Instance& i : u.instances) view[i.id] = i;
      continue;
    }
    for (const Change& c : u.changes) {
      if (c.type == ChangeType::kRegistered || c.type == ChangeType::kUpdated) {
        view[c.instance.id] = c.instance;
      } else {
        view.erase(c.instance.id);
      }
    }
  }
  return view;
}

Instance TestInstance(std::string id, std::string service, std::string version) {
  Instance in;
  in.service = std::move(service);
  in.id = std::move(id);
  in.version = std::move(version);
  in.address = "127.0.0.1:9000";
  return in;
}

ServiceQuery Query(std::string service, std::string version, std::string ns) {
  ServiceQuery query;
  query.ns = std::move(ns);
  query.service = std::move(service);
  query.version = std::move(version);
  return query;
}

std::vector<std::string> IdsOf(const std::vector<Instance>& instances) {
  std::vector<std::string> out;
  for (const Instance& i : instances) out.push_back(i.id);
  return out;
}

// ---------------------------------------------------------------------------
// The fixture.

void RegistryConformanceTest::SetUp() {
  harness_ = GetParam().make_harness();
  ASSERT_NE(harness_, nullptr);
  absl::Status started = harness_->SetUp();
  ASSERT_TRUE(started.ok()) << started;
  registry_ = &NewRegistry();
}

void RegistryConformanceTest::TearDown() {
  // Registries first: no callback may run into a recorder being destroyed.
  for (auto& r : registries_) r->Close();
  registries_.clear();
  if (HasFailure() && harness_ != nullptr) {
    std::string diagnostics = harness_->Diagnostics();
    if (!diagnostics.empty()) std::cerr << diagnostics << "\n";
  }
}

Registry& RegistryConformanceTest::NewRegistry() {
  registries_.push_back(harness_->NewRegistry());
  return *registries_.back();
}

UpdateRecorder& RegistryConformanceTest::NewRecorder() {
  recorders_.push_back(std::make_unique<UpdateRecorder>());
  return *recorders_.back();
}

// ---------------------------------------------------------------------------
// Registration and listing.

// A registration answers the stored instance with its revisions and health.
TEST_P(RegistryConformanceTest, RegisterReturnsStoredInstanceWithRevisions) {
  Instance in = TestInstance("a");
  in.weight = 7;
  in.metadata = {{"zone", "z1"}};
  auto a = registry().Register(in, call_);
  ASSERT_THAT(a, IsOk());
  EXPECT_GT(a->create_revision, 0u);
  EXPECT_EQ(a->create_revision, a->modify_revision);
  EXPECT_EQ(a->health, Health::kPassing);
  EXPECT_TRUE(a->SameSpec(in));

  auto b = registry().Register(TestInstance("b"), call_);
  ASSERT_THAT(b, IsOk());
  EXPECT_GT(b->create_revision, a->modify_revision);

  auto list = registry().ListServices(Query("svc"), call_);
  ASSERT_THAT(list, IsOk());
  EXPECT_GE(list->revision, b->modify_revision);
}

// Registering exactly the same instance again creates no revision.
TEST_P(RegistryConformanceTest, ReRegisteringSameInstanceChangesNothing) {
  auto first = registry().Register(TestInstance("a"), call_);
  ASSERT_THAT(first, IsOk());
  auto before = registry().ListServices(Query("svc"), call_);
  ASSERT_THAT(before, IsOk());

  auto again = registry().Register(TestInstance("a"), call_);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->create_revision, first->create_revision);
  EXPECT_EQ(again->modify_revision, first->modify_revision);

  auto after = registry().ListServices(Query("svc"), call_);
  ASSERT_THAT(after, IsOk());
  EXPECT_EQ(after->revision, before->revision);
}

// A changed registration moves modify_revision on and keeps create_revision.
TEST_P(RegistryConformanceTest, ChangedRegistrationBumpsModifyRevision) {
  auto first = registry().Register(TestInstance("a"), call_);
  ASSERT_THAT(first, IsOk());
  Instance changed = TestInstance("a");
  changed.weight = 300;
  auto second = registry().Register(changed, call_);
  ASSERT_THAT(second, IsOk());
  EXPECT_EQ(second->create_revision, first->create_revision);
  EXPECT_GT(second->modify_revision, first->modify_revision);
  EXPECT_EQ(second->weight, 300u);

  auto list = registry().ListServices(Query("svc"), call_);
  ASSERT_THAT(list, IsOk());
  ASSERT_EQ(list->instances.size(), 1u);
  EXPECT_EQ(list->instances[0].weight, 300u);
  EXPECT_EQ(list->instances[0].modify_revision, second->modify_revision);
}

// Lists come sorted by id, and a version narrows them to that version.
TEST_P(RegistryConformanceTest, ListIsSortedByIdAndFiltersByVersion) {
  for (auto [id, version] : {std::pair{"c", "v1"}, {"a", "v2"}, {"b", "v1"}, {"d", ""}}) {
    ASSERT_THAT(registry().Register(TestInstance(id, "svc", version), call_), IsOk());
  }
  auto all = registry().ListServices(Query("svc"), call_);
  ASSERT_THAT(all, IsOk());
  EXPECT_THAT(IdsOf(all->instances), ElementsAre("a", "b", "c", "d"));

  auto v1 = registry().ListServices(Query("svc", "v1"), call_);
  ASSERT_THAT(v1, IsOk());
  EXPECT_THAT(IdsOf(v1->instances), ElementsAre("b", "c"));
  EXPECT_EQ(v1->revision, all->revision);

  auto none = registry().ListServices(Query("svc", "v9"), call_);
  ASSERT_THAT(none, IsOk());
  EXPECT_THAT(none->instances, IsEmpty());
}

// An unknown service lists as empty, not as an error.
TEST_P(RegistryConformanceTest, UnknownServiceListsEmpty) {
  auto list = registry().ListServices(Query("nobody"), call_);
  ASSERT_THAT(list, IsOk());
  EXPECT_THAT(list->instances, IsEmpty());
}

// Services of the same name in different namespaces never see each other.
TEST_P(RegistryConformanceTest, NamespacesAreSeparate) {
  Instance other = TestInstance("x");
  other.ns = "staging";
  ASSERT_THAT(registry().Register(other, call_), IsOk());
  ASSERT_THAT(registry().Register(TestInstance("y"), call_), IsOk());

  auto staging = registry().ListServices(Query("svc", "", "staging"), call_);
  ASSERT_THAT(staging, IsOk());
  EXPECT_THAT(IdsOf(staging->instances), ElementsAre("x"));
  auto def = registry().ListServices(Query("svc"), call_);
  ASSERT_THAT(def, IsOk());
  EXPECT_THAT(IdsOf(def->instances), ElementsAre("y"));
  EXPECT_THAT(registry().Deregister({"default", "svc", "x"}, call_),
              StatusIs(absl::StatusCode::kNotFound, _));
}

// Deregister removes the instance; a second deregister is NotFound.
TEST_P(RegistryConformanceTest, DeregisterRemovesInstanceThenIsNotFound) {
  auto a = registry().Register(TestInstance("a"), call_);
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(registry().Deregister(KeyOf(*a), call_), IsOk());
  auto list = registry().ListServices(Query("svc"), call_);
  ASSERT_THAT(list, IsOk());
  EXPECT_THAT(list->instances, IsEmpty());
  EXPECT_GT(list->revision, a->modify_revision);
  EXPECT_THAT(registry().Deregister(KeyOf(*a), call_), StatusIs(absl::StatusCode::kNotFound, _));
}

// Deregistering an instance that never existed is NotFound.
TEST_P(RegistryConformanceTest, DeregisterUnknownIsNotFound) {
  EXPECT_THAT(registry().Deregister({"default", "svc", "ghost"}, call_),
              StatusIs(absl::StatusCode::kNotFound, _));
}

// A heartbeat renews a registered instance and is NotFound for others.
TEST_P(RegistryConformanceTest, HeartbeatOfUnknownInstanceIsNotFound) {
  EXPECT_THAT(registry().UpdateService({"default", "svc", "ghost"}, call_),
              StatusIs(absl::StatusCode::kNotFound, _));
  ASSERT_THAT(registry().Register(TestInstance("a"), call_), IsOk());
  EXPECT_THAT(registry().UpdateService({"default", "svc", "a"}, call_), IsOk());
  ASSERT_THAT(registry().Deregister({"default", "svc", "a"}, call_), IsOk());
  EXPECT_THAT(registry().UpdateService({"default", "svc", "a"}, call_),
              StatusIs(absl::StatusCode::kNotFound, _));
}

// Check states are the registry's: at registration a ttl check is passing
// (the lease holds it) and an active check is critical until it is checked,
// whatever states the registration claims; health is the worst of them. The
// same registration again changes nothing and keeps them.
TEST_P(RegistryConformanceTest, RegistrationSetsCheckStatesAsTheRegistryStoresThem) {
  Instance in = TestInstance("checked");
  Check lease;
  lease.id = "lease";
  lease.type = CheckType::kTtl;
  Check web;
  web.id = "web";
  web.type = CheckType::kHttp;
  web.target = "/health";
  web.status = Health::kPassing;  // not the registrant's to say
  web.output = "claimed";
  in.checks = {lease, web};
  in.health = Health::kPassing;
  auto stored = registry().Register(in, call_);
  ASSERT_THAT(stored, IsOk());
  EXPECT_TRUE(stored->SameSpec(in));
  ASSERT_EQ(stored->checks.size(), 2u);
  EXPECT_EQ(stored->checks[0].status, Health::kPassing);
  EXPECT_EQ(stored->checks[1].status, Health::kCritical);
  EXPECT_EQ(stored->checks[1].output, "");
  EXPECT_EQ(stored->health, Health::kCritical);

  auto again = registry().Register(in, call_);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->modify_revision, stored->modify_revision);
  EXPECT_EQ(again->health, Health::kCritical);
  auto list = registry().ListServices(Query("svc"), call_);
  ASSERT_THAT(list, IsOk());
  ASSERT_EQ(list->instances.size(), 1u);
  EXPECT_EQ(list->instances[0].health, Health::kCritical);  // nothing answers its check
  EXPECT_EQ(list->instances[0].checks[0].status, Health::kPassing);
}

// ---------------------------------------------------------------------------
// Leases.

// An instance whose lease lapses is removed, and subscribers hear kExpired.
TEST_P(RegistryConformanceTest, LapsedLeaseExpiresInstanceAndNotifiesSubscribers) {
  Instance in = TestInstance("short");
  in.ttl_seconds = 1;
  auto stored = registry().Register(in, call_);
  ASSERT_THAT(stored, IsOk());
  UpdateRecorder& recorder = NewRecorder();
  ASSERT_THAT(registry().Subscribe(Query("svc"), recorder.Callback()), IsOk());
  ASSERT_TRUE(recorder.WaitForCount(1, kWait));

  harness().AdvanceTime(std::chrono::seconds(1));
  ASSERT_TRUE(recorder.WaitForChange([](const Change& c) { return c.type == ChangeType::kExpired; },
                                     kWait));
  std::vector<Change> changes = recorder.changes();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].instance.id, "short");
  EXPECT_GT(changes[0].revision, stored->modify_revision);

  auto list = registry().ListServices(Query("svc"), call_);
  ASSERT_THAT(list, IsOk());
  EXPECT_THAT(list->instances, IsEmpty());
  EXPECT_GE(list->revision, changes[0].revision);
  EXPECT_THAT(registry().UpdateService(KeyOf(in), call_),
              StatusIs(absl::StatusCode::kNotFound, _));
}

// Heartbeats keep an instance registered past its TTL; one without heartbeats
// lapses meanwhile, and one with TTL 0 never does. (Time passing is the
// behaviour here, so the test lets it pass.)
TEST_P(RegistryConformanceTest, HeartbeatsKeepInstanceAlive) {
  Instance kept = TestInstance("kept");
  kept.ttl_seconds = 1;
  Instance lapsing = TestInstance("lapsing");
  lapsing.ttl_seconds = 1;
  Instance forever = TestInstance("forever");
  forever.ttl_seconds = 0;
  for (const Instance& in : {kept, lapsing, forever}) {
    ASSERT_THAT(registry().Register(in, call_), IsOk());
  }
  UpdateRecorder& recorder = NewRecorder();
  ASSERT_THAT(registry().Subscribe(Query("svc"), recorder.Callback()), IsOk());

  for (int i = 0; i < 8; ++i) {
    harness().AdvanceTime(std::chrono::milliseconds(300));
    ASSERT_THAT(registry().UpdateService(KeyOf(kept), call_), IsOk()) << "round " << i;
  }
  ASSERT_TRUE(recorder.WaitForChange(
      [](const Change& c) { return c.type == ChangeType::kExpired && c.instance.id == "lapsing"; },
      kWait));
  auto list = registry().ListServices(Query("svc"), call_);
  ASSERT_THAT(list, IsOk());
  EXPECT_THAT(IdsOf(list->instances), ElementsAre("forever", "kept"));
  EXPECT_THAT(ChangedIds(recorder.changes()), ElementsAre("lapsing"));
}

// ---------------------------------------------------------------------------
// Subscriptions.

// A subscription gets a snapshot, then registered/updated/deregistered
// changes in revision order, with no gaps or duplicates.
TEST_P(RegistryConformanceTest, SubscribeDeliversSnapshotThenChangesInRevisionOrder) {
  auto a = registry().Register(TestInstance("a"), call_);
  ASSERT_THAT(a, IsOk());
  UpdateRecorder& recorder = NewRecorder();
  ASSERT_THAT(registry().Subscribe(Query("svc"), recorder.Callback()), IsOk());
  ASSERT_TRUE(recorder.WaitForCount(1, kWait));
  WatchUpdate snapshot = recorder.updates()[0];
  EXPECT_THAT(snapshot.status, IsOk());
  EXPECT_TRUE(snapshot.snapshot);
  EXPECT_THAT(IdsOf(snapshot.instances), ElementsAre("a"));
  EXPECT_GE(snapshot.revision, a->modify_revision);

  auto b = registry().Register(TestInstance("b"), call_);
  ASSERT_THAT(b, IsOk());
  Instance a2 = TestInstance("a");
  a2.weight = 5;
  auto a2_stored = registry().Register(a2, call_);
  ASSERT_THAT(a2_stored, IsOk());
  ASSERT_THAT(registry().Deregister(KeyOf(*b), call_), IsOk());
  auto after_deregister = registry().ListServices(Query("svc"), call_);
  ASSERT_THAT(after_deregister, IsOk());
  // A last change marks the end: nothing may come between or after.
  auto marker = registry().Register(TestInstance("z"), call_);
  ASSERT_THAT(marker, IsOk());
  ASSERT_TRUE(recorder.WaitForChange([](const Change& c) { return c.instance.id == "z"; }, kWait));

  std::vector<Change> changes = recorder.changes();
  EXPECT_THAT(TypesOf(changes),
              ElementsAre(ChangeType::kRegistered, ChangeType::kUpdated,
                          ChangeType::kDeregistered, ChangeType::kRegistered));
  EXPECT_THAT(ChangedIds(changes), ElementsAre("b", "a", "b", "z"));
  ASSERT_EQ(changes.size(), 4u);
  EXPECT_EQ(changes[0].revision, b->modify_revision);
  EXPECT_EQ(changes[1].revision, a2_stored->modify_revision);
  EXPECT_EQ(changes[1].instance.weight, 5u);
  EXPECT_EQ(changes[2].revision, after_deregister->revision);
  EXPECT_EQ(changes[3].revision, marker->modify_revision);

  std::vector<WatchUpdate> updates = recorder.updates();
  EXPECT_FALSE(HasFailedUpdate(updates));
  uint64_t last = snapshot.revision;
  for (size_t i = 1; i < updates.size(); ++i) {
    EXPECT_FALSE(updates[i].snapshot) << "update " << i;
    for (const Change& c : updates[i].changes) {
      EXPECT_GT(c.revision, last);
      last = c.revision;
    }
    if (!updates[i].changes.empty()) {
      EXPECT_EQ(updates[i].revision, updates[i].changes.back().revision);
    }
  }
  auto list = registry().ListServices(Query("svc"), call_);
  ASSERT_THAT(list, IsOk());
  std::map<std::string, Instance> view = recorder.View();
  std::vector<std::string> view_ids;
  for (const auto& [id, in] : view) view_ids.push_back(id);
  EXPECT_EQ(view_ids, IdsOf(list->instances));
}

// A subscription of one version sees instances move in and out of it.
TEST_P(RegistryConformanceTest, SubscriptionFollowsOneVersion) {
  ASSERT_THAT(registry().Register(TestInstance("old", "svc", "v1"), call_), IsOk());
  ASSERT_THAT(registry().Register(TestInstance("new", "svc", "v2"), call_), IsOk());
  UpdateRecorder& recorder = NewRecorder();
  ASSERT_THAT(registry().Subscribe(Query("svc", "v2"), recorder.Callback()),
              IsOk());
  ASSERT_TRUE(recorder.WaitForCount(1, kWait));
  EXPECT_THAT(IdsOf(recorder.updates()[0].instances), ElementsAre("new"));

  ASSERT_THAT(registry().Register(TestInstance("other", "svc", "v1"), call_), IsOk());  // unseen
  ASSERT_THAT(registry().Register(TestInstance("old", "svc", "v2"), call_), IsOk());    // moves in
  ASSERT_THAT(registry().Register(TestInstance("new", "svc", "v3"), call_), IsOk());    // moves out
  ASSERT_THAT(registry().Deregister({"default", "svc", "other"}, call_), IsOk());      // unseen
  ASSERT_THAT(registry().Register(TestInstance("z", "svc", "v2"), call_), IsOk());      // marker
  ASSERT_TRUE(recorder.WaitForChange([](const Change& c) { return c.instance.id == "z"; }, kWait));

  std::vector<Change> changes = recorder.changes();
  EXPECT_THAT(ChangedIds(changes), ElementsAre("old", "new", "z"));
  EXPECT_THAT(TypesOf(changes), ElementsAre(ChangeType::kRegistered, ChangeType::kDeregistered,
                                            ChangeType::kRegistered));
  std::map<std::string, Instance> view = recorder.View();
  EXPECT_EQ(view.size(), 2u);
  EXPECT_TRUE(view.contains("old") && view.contains("z"));
}

// Subscribing to a service nobody registered yet gives an empty snapshot,
// then its first instance.
TEST_P(RegistryConformanceTest, SubscriptionOfUnknownServiceStartsEmpty) {
  UpdateRecorder& recorder = NewRecorder();
  ASSERT_THAT(registry().Subscribe(Query("later"), recorder.Callback()), IsOk());
  ASSERT_TRUE(recorder.WaitForCount(1, kWait));
  WatchUpdate first = recorder.updates()[0];
  EXPECT_TRUE(first.snapshot);
  EXPECT_THAT(first.instances, IsEmpty());
  ASSERT_THAT(registry().Register(TestInstance("x", "later"), call_), IsOk());
  ASSERT_TRUE(recorder.WaitForChange(
      [](const Change& c) { return c.type == ChangeType::kRegistered && c.instance.id == "x"; },
      kWait));
}

// Once Unsubscribe returns, the callback never runs again.
TEST_P(RegistryConformanceTest, UnsubscribeStopsCallbacks) {
  // Shared with the callback, which outlives the test body if it fails early.
  struct Counts {
    std::atomic<bool> unsubscribed{false};
    std::atomic<int> late_calls{0};
    std::atomic<int> calls{0};
  };
  auto counts = std::make_shared<Counts>();
  auto stopped = registry().Subscribe(Query("svc"), [counts](const WatchUpdate&) {
    ++counts->calls;
    if (counts->unsubscribed) ++counts->late_calls;
  });
  ASSERT_THAT(stopped, IsOk());
  UpdateRecorder& witness = NewRecorder();
  ASSERT_THAT(registry().Subscribe(Query("svc"), witness.Callback()), IsOk());
  ASSERT_TRUE(witness.WaitForCount(1, kWait));

  registry().Unsubscribe(*stopped);
  counts->unsubscribed = true;
  ASSERT_THAT(registry().Register(TestInstance("a"), call_), IsOk());
  ASSERT_THAT(registry().Register(TestInstance("b"), call_), IsOk());
  ASSERT_TRUE(witness.WaitForChange([](const Change& c) { return c.instance.id == "b"; }, kWait));
  EXPECT_EQ(counts->late_calls.load(), 0);
  EXPECT_LE(counts->calls.load(), 1);  // the snapshot at most
  registry().Unsubscribe(*stopped);  // twice is harmless
}

// A callback may unsubscribe another subscription without deadlocking.
TEST_P(RegistryConformanceTest, UnsubscribeFromAnotherCallbackDoesNotDeadlock) {
  UpdateRecorder& victim = NewRecorder();
  auto victim_id = registry().Subscribe(Query("svc"), victim.Callback());
  ASSERT_THAT(victim_id, IsOk());
  ASSERT_TRUE(victim.WaitForCount(1, kWait));

  // Shared with the callback, which may still run after the test body ends.
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    bool snapshot = false;
    bool done = false;
  };
  auto state = std::make_shared<State>();
  Registry* r = &registry();
  SubscriptionId target = *victim_id;
  ASSERT_THAT(registry().Subscribe(Query("svc"),
                                   [state, r, target](const WatchUpdate& update) {
                                     if (update.snapshot) {
                                       std::lock_guard lock(state->mu);
                                       state->snapshot = true;
                                       state->cv.notify_all();
                                       return;
                                     }
                                     if (update.changes.empty()) return;
                                     r->Unsubscribe(target);
                                     std::lock_guard lock(state->mu);
                                     state->done = true;
                                     state->cv.notify_all();
                                   }),
              IsOk());
  {
    // Register only once the subscription has its snapshot: a registration
    // before that may land in the snapshot and never come as a change.
    std::unique_lock lock(state->mu);
    ASSERT_TRUE(state->cv.wait_for(lock, kWait, [&] { return state->snapshot; }));
  }
  ASSERT_THAT(registry().Register(TestInstance("a"), call_), IsOk());
  std::unique_lock lock(state->mu);
  EXPECT_TRUE(state->cv.wait_for(lock, kWait, [&] { return state->done; }));
}

// A callback that runs while Unsubscribe (or Close) is called has finished
// when the call returns.
struct SlowCallback {
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false;
  std::atomic<bool> left{false};

  WatchCallback Callback() {
    return [this](const WatchUpdate&) {
      {
        std::lock_guard lock(mu);
        if (entered) return;
        entered = true;
      }
      cv.notify_all();
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      left = true;
    };
  }
  bool WaitEntered(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [&] { return entered; });
  }
};

TEST_P(RegistryConformanceTest, UnsubscribeWaitsForRunningCallback) {
  auto slow = std::make_shared<SlowCallback>();  // outlives a failed test body
  auto id = registry().Subscribe(Query("svc"), [slow](const WatchUpdate& u) { slow->Callback()(u); });
  ASSERT_THAT(id, IsOk());
  ASSERT_TRUE(slow->WaitEntered(kWait));  // in the snapshot's callback
  registry().Unsubscribe(*id);
  EXPECT_TRUE(slow->left);
}

TEST_P(RegistryConformanceTest, CloseWaitsForRunningCallback) {
  auto slow = std::make_shared<SlowCallback>();
  Registry& closing = NewRegistry();
  ASSERT_THAT(closing.Subscribe(Query("svc"), [slow](const WatchUpdate& u) { slow->Callback()(u); }),
              IsOk());
  ASSERT_TRUE(slow->WaitEntered(kWait));
  closing.Close();
  EXPECT_TRUE(slow->left);
}

// Unsubscribing an id that never existed is ignored.
TEST_P(RegistryConformanceTest, UnsubscribeUnknownIdIsIgnored) {
  registry().Unsubscribe(987654321);
  EXPECT_THAT(registry().ListServices(Query("svc"), call_), IsOk());
}

// ---------------------------------------------------------------------------
// Errors and lifecycle.

// Bad instances, keys and queries are InvalidArgument, and change nothing.
TEST_P(RegistryConformanceTest, InvalidInputIsInvalidArgument) {
  const auto invalid = [](const auto& result) {
    return ::testing::Matches(StatusIs(absl::StatusCode::kInvalidArgument, _))(result);
  };
  std::vector<Instance> bad(8, TestInstance("a"));
  bad[0].address = "no-port";
  bad[1].weight = 0;
  bad[2].weight = 10001;
  bad[3].service = "";
  bad[4].id = "a/b";
  bad[5].ttl_seconds = 86401;
  bad[6].metadata = {{"bad key", "v"}};
  bad[7].ns = "name space";
  for (size_t i = 0; i < bad.size(); ++i) {
    EXPECT_TRUE(invalid(registry().Register(bad[i], call_))) << "instance " << i;
  }
  EXPECT_TRUE(invalid(registry().Deregister({"default", "svc", "a b"}, call_)));
  EXPECT_TRUE(invalid(registry().UpdateService({"default", "", "a"}, call_)));
  EXPECT_TRUE(invalid(registry().ListServices(Query(""), call_)));
  EXPECT_TRUE(invalid(registry().ListServices(Query("svc", "1 0"), call_)));
  EXPECT_TRUE(invalid(registry().Subscribe(Query("s?x"), [](const WatchUpdate&) {})));

  auto list = registry().ListServices(Query("svc"), call_);
  ASSERT_THAT(list, IsOk());
  EXPECT_THAT(list->instances, IsEmpty());
}

// After Close every call fails with FailedPrecondition; Close is idempotent.
TEST_P(RegistryConformanceTest, CallsAfterCloseFailWithFailedPrecondition) {
  auto a = registry().Register(TestInstance("a"), call_);
  ASSERT_THAT(a, IsOk());
  registry().Close();
  const auto closed = StatusIs(absl::StatusCode::kFailedPrecondition, _);
  EXPECT_THAT(registry().Register(TestInstance("b"), call_), closed);
  EXPECT_THAT(registry().Deregister(KeyOf(*a), call_), closed);
  EXPECT_THAT(registry().UpdateService(KeyOf(*a), call_), closed);
  EXPECT_THAT(registry().ListServices(Query("svc"), call_), closed);
  EXPECT_THAT(registry().Subscribe(Query("svc"), [](const WatchUpdate&) {}), closed);
  registry().Unsubscribe(1);
  registry().Close();
}

// Close ends subscriptions: their callbacks do not run afterwards.
TEST_P(RegistryConformanceTest, CloseEndsSubscriptions) {
  struct Counts {
    std::atomic<bool> closed{false};
    std::atomic<int> late_calls{0};
  };
  auto counts = std::make_shared<Counts>();
  UpdateRecorder& recorder = NewRecorder();
  Registry& watched = NewRegistry();
  ASSERT_THAT(watched.Subscribe(Query("svc"), recorder.Callback()), IsOk());
  ASSERT_THAT(watched.Subscribe(Query("svc"),
                                [counts](const WatchUpdate&) {
                                  if (counts->closed) ++counts->late_calls;
                                }),
              IsOk());
  UpdateRecorder& live = NewRecorder();
  ASSERT_THAT(registry().Subscribe(Query("svc"), live.Callback()), IsOk());
  ASSERT_TRUE(recorder.WaitForCount(1, kWait));
  ASSERT_TRUE(live.WaitForCount(1, kWait));
  watched.Close();
  counts->closed = true;
  // A change through another registry of the same backend (if it shares
  // state): by the time a live subscription has it, a closed one that still
  // ran would have had it too.
  ASSERT_THAT(registry().Register(TestInstance("a"), call_), IsOk());
  ASSERT_TRUE(live.WaitForChange([](const Change& c) { return c.instance.id == "a"; }, kWait));
  EXPECT_EQ(counts->late_calls.load(), 0);
  EXPECT_EQ(recorder.updates().size(), 1u);
}

// Registrations from several threads at once all land, each with its own revision.
TEST_P(RegistryConformanceTest, ConcurrentRegistersAllLand) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 20;
  UpdateRecorder& recorder = NewRecorder();
  ASSERT_THAT(registry().Subscribe(Query("svc"), recorder.Callback()), IsOk());
  ASSERT_TRUE(recorder.WaitForCount(1, kWait));

  std::vector<std::vector<uint64_t>> revisions(kThreads);
  std::vector<std::vector<absl::Status>> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        char id[32];
        std::snprintf(id, sizeof id, "t%02d-%03d", t, i);
        auto stored = registry().Register(TestInstance(id), call_);
        if (stored.ok()) {
          revisions[t].push_back(stored->create_revision);
        } else {
          errors[t].push_back(stored.status());
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<uint64_t> distinct;
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_THAT(errors[t], IsEmpty()) << "thread " << t;
    distinct.insert(revisions[t].begin(), revisions[t].end());
  }
  EXPECT_EQ(distinct.size(), static_cast<size_t>(kThreads * kPerThread));

  auto list = registry().ListServices(Query("svc"), call_);
  ASSERT_THAT(list, IsOk());
  EXPECT_EQ(list->instances.size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_TRUE(std::is_sorted(list->instances.begin(), list->instances.end(),
                             [](const Instance& x, const Instance& y) { return x.id < y.id; }));

  ASSERT_TRUE(recorder.WaitForChange(
      [&](const Change& c) { return c.revision == *distinct.rbegin(); }, kWait));
  std::vector<Change> changes = recorder.changes();
  ASSERT_EQ(changes.size(), static_cast<size_t>(kThreads * kPerThread));
  for (size_t i = 1; i < changes.size(); ++i) {
    EXPECT_GT(changes[i].revision, changes[i - 1].revision);
  }
}

}  // namespace muster::testing
