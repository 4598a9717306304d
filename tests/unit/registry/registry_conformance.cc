#include "unit/registry/registry_conformance.h"

#include <algorithm>
#include <iostream>
#include <thread>
#include <utility>

#include <gmock/gmock.h>

#include "support/status_matchers.h"

namespace muster::testing {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
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

Instance TaggedInstance(std::string id, std::vector<std::string> tags, std::string version) {
  Instance in = TestInstance(std::move(id), "svc", std::move(version));
  in.tags = std::move(tags);
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

// A tag filter lists the instances that carry every tag asked for, with
// their tags in the order registered; the version filter combines with it.
TEST_P(RegistryConformanceTest, ListFiltersByEveryTag) {
  ASSERT_THAT(registry().Register(TaggedInstance("a", {"primary", "eu"}, "v1"), call_), IsOk());
  ASSERT_THAT(registry().Register(TaggedInstance("b", {"eu"}, "v1"), call_), IsOk());
  ASSERT_THAT(registry().Register(TaggedInstance("c", {"eu", "primary"}, "v2"), call_), IsOk());
  ASSERT_THAT(registry().Register(TaggedInstance("d", {}, "v1"), call_), IsOk());

  ServiceQuery eu = Query("svc");
  eu.tags = {"eu"};
  auto list = registry().ListServices(eu, call_);
  ASSERT_THAT(list, IsOk());
  EXPECT_THAT(IdsOf(list->instances), ElementsAre("a", "b", "c"));
  ASSERT_EQ(list->instances.size(), 3u);
  EXPECT_THAT(list->instances[2].tags, ElementsAre("eu", "primary"));

  ServiceQuery both = Query("svc");
  both.tags = {"primary", "eu"};
  list = registry().ListServices(both, call_);
  ASSERT_THAT(list, IsOk());
  EXPECT_THAT(IdsOf(list->instances), ElementsAre("a", "c"));

  both.version = "v1";
  list = registry().ListServices(both, call_);
  ASSERT_THAT(list, IsOk());
  EXPECT_THAT(IdsOf(list->instances), ElementsAre("a"));

  ServiceQuery bad = Query("svc");
  bad.tags = {""};
  EXPECT_THAT(registry().ListServices(bad, call_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tag")));
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

}  // namespace muster::testing
