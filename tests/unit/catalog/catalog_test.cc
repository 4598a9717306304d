#include "catalog/catalog.h"

#include <atomic>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/footprint.h"
#include "store/rocksdb_journal.h"
#include "support/status_matchers.h"
#include "unit/catalog/catalog_test_util.h"

namespace muster {
namespace {

using muster::testing::DeregisterSync;
using muster::testing::HeartbeatNow;
using muster::testing::MakeEmbedded;
using muster::testing::IsOk;
using muster::testing::MakeInstance;
using muster::testing::RegisterSync;
using muster::testing::SetCheckStateSync;
using muster::testing::StatusIs;
using ::testing::HasSubstr;

// A real RocksDB journal in a temporary directory that fails or slows its
// commits on demand, and counts them.
class FaultyJournal final : public Journal {
 public:
  explicit FaultyJournal(const std::string& dir) : inner_(*RocksDbJournal::Open(dir)) {}

  absl::Status Commit(const std::vector<Mutation>& batch, uint64_t revision) override {
    ++commits_;
    if (delay_.count() > 0) std::this_thread::sleep_for(delay_);
    if (fail_) return absl::UnavailableError("injected: no space left on device");
    return inner_->Commit(batch, revision);
  }
  absl::StatusOr<Snapshot> Load() override { return inner_->Load(); }

  std::atomic<bool> fail_{false};
  std::atomic<int> commits_{0};
  std::chrono::milliseconds delay_{0};

 private:
  std::unique_ptr<RocksDbJournal> inner_;
};

class CatalogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("muster-catalog-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    Open();
  }
  void TearDown() override {
    catalog_.reset();
    journal_.reset();
    std::filesystem::remove_all(dir_);
  }
  // (Re)opens the journal and catalog on the same directory.
  void Open() {
    catalog_.reset();
    journal_.reset();
    journal_ = std::make_unique<FaultyJournal>(dir_.string());
    LocalCommitterOptions options;
    options.clock = &clock_;
    options.limits.max_instances_per_service = 3;
    auto made = MakeEmbedded(options, journal_.get());
    committer_ = made.committer;
    catalog_ = std::move(made.catalog);
    ASSERT_THAT(catalog_->Start(), IsOk());
  }
  std::vector<std::string> Ids(const std::string& service, const ListFilter& filter = {}) {
    std::vector<std::string> ids;
    for (const auto& in : catalog_->List("default", service, filter).instances) ids.push_back(in->id);
    return ids;
  }
  // Sweeps lapsed leases once (synchronously: its expiries are applied
  // when SweepNow returns) and says whether the service then lists `ids`.
  bool ListsAfterSweep(const std::string& service, std::vector<std::string> ids) {
    committer_->SweepNow();
    return Ids(service) == ids;
  }

  std::filesystem::path dir_;
  ManualClock clock_;
  std::unique_ptr<FaultyJournal> journal_;
  LocalCommitter* committer_ = nullptr;  // catalog_'s
  std::unique_ptr<Catalog> catalog_;
};

// A writer is answered before the watchers of its service are woken, and
// the event is readable by then (a write is not answered behind wake-ups).
TEST_F(CatalogTest, WriterIsAnsweredBeforeWatchersAreWoken) {
  std::mutex mu;
  std::vector<std::string> order;
  std::atomic<bool> event_readable_at_answer{false};
  catalog_->hub().Subscribe(WatchFilter{"default", {"orders"}}, [&] {
    std::lock_guard lock(mu);
    order.push_back("woken");
  });
  std::promise<void> answered;
  catalog_->Register(MakeInstance("orders", "o1"), [&](absl::StatusOr<Catalog::WriteResult> r) {
    EXPECT_THAT(r.status(), IsOk());
    event_readable_at_answer =
        catalog_->hub().Read(1, WatchFilter{"default", {"orders"}}, 10).events.size() == 1;
    {
      std::lock_guard lock(mu);
      order.push_back("answered");
    }
    answered.set_value();
  });
  answered.get_future().wait();
  for (int i = 0; i < 500; ++i) {
    {
      std::lock_guard lock(mu);
      if (order.size() == 2) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::lock_guard lock(mu);
  EXPECT_EQ(order, (std::vector<std::string>{"answered", "woken"}));
  EXPECT_TRUE(event_readable_at_answer);
}

// A new instance gets one revision as both create and modify revision.
TEST_F(CatalogTest, RegisterAssignsRevision) {
  auto r = RegisterSync(*catalog_, MakeInstance("orders", "o1"));
  ASSERT_THAT(r.status(), IsOk());
  EXPECT_TRUE(r->created);
  EXPECT_EQ(r->instance->create_revision, 1u);
  EXPECT_EQ(r->instance->modify_revision, 1u);
  EXPECT_EQ(catalog_->revision(), 1u);
}

// Registering the same instance again changes nothing; a change bumps only modify_revision.
TEST_F(CatalogTest, ReRegisterIsIdempotentAndUpdateBumpsModifyRevision) {
  ASSERT_THAT(RegisterSync(*catalog_, MakeInstance("orders", "o1")).status(), IsOk());
  auto same = RegisterSync(*catalog_, MakeInstance("orders", "o1"));
  ASSERT_THAT(same.status(), IsOk());
  EXPECT_FALSE(same->created);
  EXPECT_EQ(same->instance->modify_revision, 1u);
  EXPECT_EQ(catalog_->revision(), 1u);

  Instance changed = MakeInstance("orders", "o1");
  changed.weight = 7;
  auto updated = RegisterSync(*catalog_, changed);
  ASSERT_THAT(updated.status(), IsOk());
  EXPECT_FALSE(updated->created);
  EXPECT_EQ(updated->instance->create_revision, 1u);
  EXPECT_EQ(updated->instance->modify_revision, 2u);
  EXPECT_EQ(updated->instance->weight, 7u);
  auto events = catalog_->hub().Read(1, WatchFilter{}, 10).events;
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, ChangeType::kRegistered);
  EXPECT_EQ(events[1].type, ChangeType::kUpdated);
}

// Deregistering an unknown instance is NotFound and raises no revision.
TEST_F(CatalogTest, DeregisterUnknownIsNotFound) {
  EXPECT_THAT(DeregisterSync(*catalog_, {"default", "orders", "nope"}).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope")));
  EXPECT_EQ(catalog_->revision(), 0u);
}

// A deregistered instance leaves the list, with a deregistered event.
TEST_F(CatalogTest, DeregisterRemovesInstance) {
  ASSERT_THAT(RegisterSync(*catalog_, MakeInstance("orders", "o1")).status(), IsOk());
  auto r = DeregisterSync(*catalog_, {"default", "orders", "o1"});
  ASSERT_THAT(r.status(), IsOk());
  EXPECT_EQ(r->revision, 2u);
  EXPECT_TRUE(Ids("orders").empty());
  EXPECT_EQ(catalog_->ServiceRevision("default", "orders"), 2u);
  EXPECT_EQ(catalog_->hub().Read(2, WatchFilter{}, 10).events.at(0).type, ChangeType::kDeregistered);
}

// A heartbeat for an instance that is not registered is NotFound.
TEST_F(CatalogTest, HeartbeatUnknownIsNotFound) {
  EXPECT_THAT(HeartbeatNow(*catalog_, {"default", "orders", "o1"}).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("not registered")));
}

// An instance whose lease lapses is removed with an expired event.
TEST_F(CatalogTest, LeaseExpiryRemovesInstance) {
  ASSERT_THAT(RegisterSync(*catalog_, MakeInstance("orders", "short", 5)).status(), IsOk());
  ASSERT_THAT(RegisterSync(*catalog_, MakeInstance("orders", "long", 60)).status(), IsOk());
  clock_.Advance(std::chrono::seconds(6));
  ASSERT_TRUE(ListsAfterSweep("orders", {"long"}));
  auto events = catalog_->hub().Read(3, WatchFilter{}, 10).events;
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, ChangeType::kExpired);
  EXPECT_EQ(events[0].instance->id, "short");
  EXPECT_THAT(HeartbeatNow(*catalog_, {"default", "orders", "short"}).status(),
              StatusIs(absl::StatusCode::kNotFound, ::testing::_));
}

// Heartbeats keep an instance registered past its TTL.
TEST_F(CatalogTest, HeartbeatsKeepInstanceAlive) {
  ASSERT_THAT(RegisterSync(*catalog_, MakeInstance("orders", "o1", 5)).status(), IsOk());
  for (int i = 0; i < 10; ++i) {
    clock_.Advance(std::chrono::seconds(3));
    ASSERT_THAT(HeartbeatNow(*catalog_, {"default", "orders", "o1"}).status(), IsOk());
    committer_->SweepNow();
  }
  EXPECT_EQ(Ids("orders"), std::vector<std::string>{"o1"});
}

// An instance without a lease (ttl 0) never expires, and heartbeats still succeed.
TEST_F(CatalogTest, ZeroTtlNeverExpires) {
  ASSERT_THAT(RegisterSync(*catalog_, MakeInstance("orders", "o1", 0)).status(), IsOk());
  clock_.Advance(std::chrono::hours(48));
  committer_->SweepNow();
  EXPECT_THAT(HeartbeatNow(*catalog_, {"default", "orders", "o1"}).status(), IsOk());
  EXPECT_EQ(Ids("orders"), std::vector<std::string>{"o1"});
  EXPECT_EQ(committer_->leases().size(), 0u);
}

// A full service refuses new instances but still accepts updates of existing ones.
TEST_F(CatalogTest, InstancesPerServiceLimit) {
  for (const char* id : {"a", "b", "c"}) {
    ASSERT_THAT(RegisterSync(*catalog_, MakeInstance("orders", id)).status(), IsOk());
  }
  EXPECT_THAT(RegisterSync(*catalog_, MakeInstance("orders", "d")).status(),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("maximum of 3")));
  Instance update = MakeInstance("orders", "a");
  update.weight = 9;
  EXPECT_THAT(RegisterSync(*catalog_, update).status(), IsOk());
  EXPECT_THAT(RegisterSync(*catalog_, MakeInstance("other", "d")).status(), IsOk());
}

// An instance with 32 KiB of metadata.
Instance BigInstance(std::string service, std::string id) {
  Instance in = MakeInstance(std::move(service), std::move(id));
  for (int k = 0; k < 64; ++k) in.metadata["key" + std::to_string(k)] = std::string(512, 'v');
  return in;
}

// The bytes the instances of one service hold, and of all services, are
// bounded: a registration or update past either limit is refused with
// ResourceExhausted and changes nothing; shrinking and removing always work
// and make room again.
TEST(CatalogBytesTest, InstanceBytesLimits) {
  const size_t big = ApproximateBytes(BigInstance("a", "1"));
  LocalCommitterOptions options;
  options.limits.max_service_bytes = 3 * big + big / 2;
  options.limits.max_catalog_bytes = 5 * big + big / 2;
  auto made = MakeEmbedded(options, nullptr);
  Catalog& catalog = *made.catalog;
  ASSERT_THAT(catalog.Start(), IsOk());
  for (const char* id : {"1", "2", "3"}) {
    ASSERT_THAT(RegisterSync(catalog, BigInstance("a", id)).status(), IsOk());
  }
  EXPECT_EQ(catalog.instance_bytes(), 3 * big);
  EXPECT_THAT(RegisterSync(catalog, BigInstance("a", "4")).status(),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("max_service_bytes")));
  // A small instance still fits the service's remaining half instance.
  EXPECT_THAT(RegisterSync(catalog, MakeInstance("a", "small")).status(), IsOk());
  // Growing an existing instance past the limit is refused too, and leaves it as it was.
  Instance grown = BigInstance("a", "small");
  EXPECT_THAT(RegisterSync(catalog, grown).status(),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("max_service_bytes")));
  EXPECT_TRUE(catalog.Get({"default", "a", "small"})->metadata.empty());
  ASSERT_THAT(DeregisterSync(catalog, {"default", "a", "1"}).status(), IsOk());
  EXPECT_THAT(RegisterSync(catalog, grown).status(), IsOk());

  // The whole registry: 4 big in "a" and "b" now, room for one more.
  ASSERT_THAT(RegisterSync(catalog, BigInstance("b", "1")).status(), IsOk());
  ASSERT_THAT(RegisterSync(catalog, BigInstance("b", "2")).status(), IsOk());
  EXPECT_THAT(RegisterSync(catalog, BigInstance("c", "1")).status(),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("max_catalog_bytes")));
  for (const auto& key : std::vector<InstanceKey>{{"default", "a", "2"}, {"default", "a", "3"},
                                                  {"default", "a", "small"}, {"default", "b", "1"},
                                                  {"default", "b", "2"}}) {
    ASSERT_THAT(DeregisterSync(catalog, key).status(), IsOk());
  }
  EXPECT_EQ(catalog.instance_bytes(), 0u);
  EXPECT_THAT(RegisterSync(catalog, BigInstance("c", "1")).status(), IsOk());
}

// List filters by version, health/status and metadata; results are sorted by id.
TEST_F(CatalogTest, ListFilters) {
  Instance a = MakeInstance("orders", "b-v1");
  a.version = "1";
  a.metadata["zone"] = "x";
  Instance b = MakeInstance("orders", "a-v2");
  b.version = "2";
  b.metadata["zone"] = "y";
  Instance c = MakeInstance("orders", "c-off");
  c.version = "1";
  c.status = InstanceStatus::kDisabled;
  for (const Instance& in : {a, b, c}) ASSERT_THAT(RegisterSync(*catalog_, in).status(), IsOk());

  EXPECT_EQ(Ids("orders"), (std::vector<std::string>{"a-v2", "b-v1", "c-off"}));
  EXPECT_EQ(Ids("orders", ListFilter{"1", false, {}}), (std::vector<std::string>{"b-v1", "c-off"}));
  EXPECT_EQ(Ids("orders", ListFilter{"", true, {}}), (std::vector<std::string>{"a-v2", "b-v1"}));
  EXPECT_EQ(Ids("orders", ListFilter{"", false, {{"zone", "y"}}}), std::vector<std::string>{"a-v2"});
  EXPECT_TRUE(Ids("orders", ListFilter{"", false, {{"zone", "z"}}}).empty());

  uint64_t revision = 0;
  auto services = catalog_->Services("default", &revision);
  ASSERT_EQ(services.size(), 1u);
  EXPECT_EQ(services[0].name, "orders");
  EXPECT_EQ(services[0].instances, 3u);
  EXPECT_EQ(services[0].healthy, 2u);
  EXPECT_EQ(revision, 3u);
}

// Namespaces keep services apart.
TEST_F(CatalogTest, NamespacesAreIsolated) {
  Instance in = MakeInstance("orders", "o1");
  in.ns = "staging";
  ASSERT_THAT(RegisterSync(*catalog_, in).status(), IsOk());
  EXPECT_TRUE(Ids("orders").empty());
  EXPECT_EQ(catalog_->List("staging", "orders", {}).instances.size(), 1u);
  EXPECT_TRUE(catalog_->Services("default", nullptr).empty());
}

// When the store cannot write, the caller hears Unavailable and nothing changes.
TEST_F(CatalogTest, FailedCommitChangesNothing) {
  ASSERT_THAT(RegisterSync(*catalog_, MakeInstance("orders", "o1")).status(), IsOk());
  journal_->fail_ = true;
  EXPECT_THAT(RegisterSync(*catalog_, MakeInstance("orders", "o2")).status(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("no space")));
  EXPECT_THAT(DeregisterSync(*catalog_, {"default", "orders", "o1"}).status(),
              StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
  EXPECT_EQ(Ids("orders"), std::vector<std::string>{"o1"});
  EXPECT_EQ(catalog_->revision(), 1u);
  journal_->fail_ = false;
  auto r = RegisterSync(*catalog_, MakeInstance("orders", "o2"));
  ASSERT_THAT(r.status(), IsOk());
  EXPECT_EQ(r->instance->modify_revision, 2u);
}

// A lease that lapses while the store is failing still expires once it recovers.
TEST_F(CatalogTest, ExpiryRetriedAfterFailedCommit) {
  ASSERT_THAT(RegisterSync(*catalog_, MakeInstance("orders", "o1", 1)).status(), IsOk());
  journal_->fail_ = true;
  clock_.Advance(std::chrono::seconds(2));
  const int before = journal_->commits_.load();
  committer_->SweepNow();
  EXPECT_GT(journal_->commits_.load(), before);  // the expiry was tried, and failed
  EXPECT_EQ(Ids("orders"), std::vector<std::string>{"o1"});
  journal_->fail_ = false;
  EXPECT_TRUE(ListsAfterSweep("orders", {}));
}

// While the store keeps failing, a lapsed lease's expiry is tried again once
// per sweep, not in a loop that spins the committer.
TEST_F(CatalogTest, FailingStoreIsRetriedPerSweepNotInALoop) {
  ASSERT_THAT(RegisterSync(*catalog_, MakeInstance("orders", "o1", 1)).status(), IsOk());
  journal_->fail_ = true;
  clock_.Advance(std::chrono::seconds(2));
  committer_->SweepNow();
  const int before = journal_->commits_.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  // The sweep runs every 100 ms: about 5 tries, not thousands.
  EXPECT_LE(journal_->commits_.load() - before, 10);
  EXPECT_GE(journal_->commits_.load() - before, 2);
  journal_->fail_ = false;
  EXPECT_TRUE(ListsAfterSweep("orders", {}));
}

// Concurrent writers share commits (group commit): fewer syncs than writes.
TEST_F(CatalogTest, ConcurrentWritesShareCommits) {
  journal_->delay_ = std::chrono::milliseconds(20);
  constexpr int kWriters = 40;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < kWriters; ++i) {
    threads.emplace_back([&, i] {
      Instance in = MakeInstance("s" + std::to_string(i), "i" + std::to_string(i));
      if (RegisterSync(*catalog_, in).ok()) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, kWriters);
  EXPECT_LT(journal_->commits_, kWriters);
  EXPECT_EQ(catalog_->revision(), static_cast<uint64_t>(kWriters));
  EXPECT_EQ(catalog_->instance_count(), static_cast<size_t>(kWriters));
}

// After a restart every committed change is there, leases start over, and the revision goes on.
TEST_F(CatalogTest, RestartRestoresStateAndRevision) {
  ASSERT_THAT(RegisterSync(*catalog_, MakeInstance("orders", "keep", 10)).status(), IsOk());
  ASSERT_THAT(RegisterSync(*catalog_, MakeInstance("orders", "gone", 10)).status(), IsOk());
  ASSERT_THAT(DeregisterSync(*catalog_, {"default", "orders", "gone"}).status(), IsOk());
  clock_.Advance(std::chrono::seconds(9));
  Open();
  EXPECT_EQ(catalog_->revision(), 3u);
  EXPECT_EQ(Ids("orders"), std::vector<std::string>{"keep"});
  // A fresh TTL: nine more seconds do not expire it.
  clock_.Advance(std::chrono::seconds(9));
  committer_->SweepNow();
  EXPECT_THAT(HeartbeatNow(*catalog_, {"default", "orders", "keep"}).status(), IsOk());
  auto r = RegisterSync(*catalog_, MakeInstance("orders", "new"));
  ASSERT_THAT(r.status(), IsOk());
  EXPECT_EQ(r->instance->create_revision, 4u);
  // History does not survive a restart: older revisions are compacted.
  EXPECT_TRUE(catalog_->hub().Read(3, WatchFilter{}, 10).compacted);
}

Instance WithHttpCheck(Instance in, std::string target = "/health") {
  Check c;
  c.id = "web";
  c.type = CheckType::kHttp;
  c.target = std::move(target);
  in.checks.push_back(c);
  return in;
}

Check StateOf(const Check& spec, Health status, std::string output) {
  Check c = spec;
  c.status = status;
  c.output = std::move(output);
  return c;
}

// A new active check starts critical and unchecked, so the instance is not
// handed out before its first passing result.
TEST_F(CatalogTest, NewActiveCheckStartsCritical) {
  auto r = RegisterSync(*catalog_, WithHttpCheck(MakeInstance("orders", "o1")));
  ASSERT_THAT(r.status(), IsOk());
  EXPECT_EQ(r->instance->health, Health::kCritical);
  EXPECT_EQ(r->instance->checks[0].output, "");
  ListFilter healthy;
  healthy.healthy_only = true;
  EXPECT_THAT(Ids("orders", healthy), ::testing::IsEmpty());
  EXPECT_EQ(catalog_->Services("default", nullptr)[0].healthy, 0u);
}

// A check state write changes the instance's health, is an event with the
// check's id, and moves the instance in and out of healthy lists.
TEST_F(CatalogTest, CheckStateSetsHealthAndPublishesAnEvent) {
  auto r = RegisterSync(*catalog_, WithHttpCheck(MakeInstance("orders", "o1")));
  ASSERT_THAT(r.status(), IsOk());
  const Check spec = r->instance->checks[0];
  const InstanceKey key{"default", "orders", "o1"};
  ListFilter healthy;
  healthy.healthy_only = true;

  auto passing = SetCheckStateSync(*catalog_, key, StateOf(spec, Health::kPassing, "HTTP 200 OK"));
  ASSERT_THAT(passing.status(), IsOk());
  EXPECT_EQ(passing->instance->health, Health::kPassing);
  EXPECT_EQ(passing->revision, r->revision + 1);
  EXPECT_EQ(passing->instance->modify_revision, passing->revision);
  EXPECT_EQ(passing->instance->create_revision, r->instance->create_revision);
  EXPECT_EQ(Ids("orders", healthy), std::vector<std::string>{"o1"});

  auto read = catalog_->hub().Read(passing->revision, WatchFilter{"default", {"orders"}}, 10);
  ASSERT_EQ(read.events.size(), 1u);
  EXPECT_EQ(read.events[0].type, ChangeType::kHealth);
  EXPECT_EQ(read.events[0].check, "web");
  EXPECT_EQ(read.events[0].instance->checks[0].output, "HTTP 200 OK");

  // Warning stays in healthy lists; critical leaves them.
  ASSERT_THAT(SetCheckStateSync(*catalog_, key, StateOf(spec, Health::kWarning, "HTTP 429")).status(),
              IsOk());
  EXPECT_EQ(catalog_->Get(key)->health, Health::kWarning);
  EXPECT_EQ(Ids("orders", healthy), std::vector<std::string>{"o1"});
  ASSERT_THAT(SetCheckStateSync(*catalog_, key, StateOf(spec, Health::kCritical, "HTTP 500")).status(),
              IsOk());
  EXPECT_THAT(Ids("orders", healthy), ::testing::IsEmpty());
  EXPECT_EQ(Ids("orders"), std::vector<std::string>{"o1"});

  // The same state again changes nothing and publishes nothing.
  const uint64_t before = catalog_->revision();
  ASSERT_THAT(SetCheckStateSync(*catalog_, key, StateOf(spec, Health::kCritical, "HTTP 500")).status(),
              IsOk());
  EXPECT_EQ(catalog_->revision(), before);
}

// A write for a check that a re-registration changed (or for an unknown
// instance) is refused and changes nothing.
TEST_F(CatalogTest, CheckStateForAChangedCheckIsNotFound) {
  auto r = RegisterSync(*catalog_, WithHttpCheck(MakeInstance("orders", "o1")));
  ASSERT_THAT(r.status(), IsOk());
  const Check old_spec = r->instance->checks[0];
  ASSERT_THAT(RegisterSync(*catalog_, WithHttpCheck(MakeInstance("orders", "o1"), "/ready")).status(),
              IsOk());
  const uint64_t before = catalog_->revision();
  EXPECT_THAT(SetCheckStateSync(*catalog_, {"default", "orders", "o1"},
                                StateOf(old_spec, Health::kPassing, "HTTP 200")).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no longer has check web")));
  EXPECT_THAT(SetCheckStateSync(*catalog_, {"default", "orders", "nobody"},
                                StateOf(old_spec, Health::kPassing, "HTTP 200")).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("not registered")));
  EXPECT_EQ(catalog_->revision(), before);
}

// Registering the same spec again keeps the check's state (and is only a
// renewal); a changed spec starts that check over.
TEST_F(CatalogTest, ReRegistrationKeepsCheckStatesOfTheSameSpec) {
  auto r = RegisterSync(*catalog_, WithHttpCheck(MakeInstance("orders", "o1")));
  ASSERT_THAT(r.status(), IsOk());
  const InstanceKey key{"default", "orders", "o1"};
  ASSERT_THAT(SetCheckStateSync(*catalog_, key, StateOf(r->instance->checks[0], Health::kPassing,
                                                         "HTTP 200")).status(),
              IsOk());
  const uint64_t before = catalog_->revision();
  auto same = RegisterSync(*catalog_, WithHttpCheck(MakeInstance("orders", "o1")));
  ASSERT_THAT(same.status(), IsOk());
  EXPECT_EQ(catalog_->revision(), before);
  EXPECT_EQ(same->instance->health, Health::kPassing);

  Instance reweighted = WithHttpCheck(MakeInstance("orders", "o1"));
  reweighted.weight = 5;
  auto updated = RegisterSync(*catalog_, reweighted);
  ASSERT_THAT(updated.status(), IsOk());
  EXPECT_EQ(updated->instance->health, Health::kPassing);
  EXPECT_EQ(updated->instance->checks[0].output, "HTTP 200");

  auto changed = RegisterSync(*catalog_, WithHttpCheck(MakeInstance("orders", "o1"), "/ready"));
  ASSERT_THAT(changed.status(), IsOk());
  EXPECT_EQ(changed->instance->health, Health::kCritical);
  EXPECT_EQ(changed->instance->checks[0].output, "");
}

// Check states are durable: a restart reads them back.
TEST_F(CatalogTest, CheckStatesSurviveARestart) {
  auto r = RegisterSync(*catalog_, WithHttpCheck(MakeInstance("orders", "o1", 0)));
  ASSERT_THAT(r.status(), IsOk());
  ASSERT_THAT(SetCheckStateSync(*catalog_, {"default", "orders", "o1"},
                                StateOf(r->instance->checks[0], Health::kWarning, "HTTP 429"))
                  .status(),
              IsOk());
  Open();
  auto in = catalog_->Get({"default", "orders", "o1"});
  ASSERT_NE(in, nullptr);
  EXPECT_EQ(in->health, Health::kWarning);
  EXPECT_EQ(in->checks[0].output, "HTTP 429");
}

// The change listener hears every batch after the hub has it.
TEST_F(CatalogTest, ChangeListenerHearsEveryChange) {
  std::mutex mu;
  std::vector<std::pair<ChangeType, uint64_t>> heard;
  catalog_->SetChangeListener([&](const std::vector<Event>& events, bool reset) {
    EXPECT_FALSE(reset);
    std::lock_guard lock(mu);
    for (const Event& e : events) {
      EXPECT_LE(e.revision, catalog_->hub().last_revision());
      heard.emplace_back(e.type, e.revision);
    }
  });
  ASSERT_THAT(RegisterSync(*catalog_, MakeInstance("orders", "o1")).status(), IsOk());
  ASSERT_THAT(DeregisterSync(*catalog_, {"default", "orders", "o1"}).status(), IsOk());
  catalog_->SetChangeListener(nullptr);
  ASSERT_THAT(RegisterSync(*catalog_, MakeInstance("orders", "o2")).status(), IsOk());
  std::lock_guard lock(mu);
  EXPECT_EQ(heard, (std::vector<std::pair<ChangeType, uint64_t>>{{ChangeType::kRegistered, 1},
                                                                 {ChangeType::kDeregistered, 2}}));
}

// After Stop, writes fail with Unavailable instead of hanging.
TEST_F(CatalogTest, WritesAfterStopAreUnavailable) {
  catalog_->Stop();
  EXPECT_THAT(RegisterSync(*catalog_, MakeInstance("orders", "o1")).status(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("shutting down")));
}

}  // namespace
}  // namespace muster
