// The memory backend against the conformance suite, plus what only it promises.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "client/memory_registry.h"
#include "muster/clock.h"
#include "muster/registry.h"
#include "support/status_matchers.h"
#include "unit/registry/registry_conformance.h"

namespace muster::testing {
namespace {

using ::testing::ElementsAre;

// Memory registries on one ManualClock: time passes only in AdvanceTime,
// never by sleeping. With `sweep_now`, AdvanceTime also sweeps every registry
// synchronously; without, the sweeper threads (woken by the clock's Advance)
// expire the leases, and the tests wait for their events.
class ManualClockHarness final : public RegistryHarness {
 public:
  explicit ManualClockHarness(bool sweep_now) : sweep_now_(sweep_now) {}
  std::unique_ptr<Registry> NewRegistry() override {
    // Sweeping synchronously, the sweeper thread is kept out of the way (no
    // test advances the clock by an hour).
    auto registry = sweep_now_ ? NewMemoryRegistry({.sweep_interval = std::chrono::hours(1),
                                                    .clock = &clock_})
                               : NewMemoryRegistry({.clock = &clock_});
    registries_.push_back(registry.get());
    return registry;
  }
  void AdvanceTime(std::chrono::milliseconds duration) override {
    clock_.Advance(duration);
    if (!sweep_now_) return;
    for (Registry* r : registries_) client::SweepMemoryRegistryNow(*r);
  }

 private:
  const bool sweep_now_;
  ManualClock clock_;  // outlives the registries (the fixture destroys them first)
  std::vector<Registry*> registries_;
};

INSTANTIATE_TEST_SUITE_P(
    Memory, RegistryConformanceTest,
    ::testing::Values(
        RegistryBackend{"memory", [] { return std::make_unique<ManualClockHarness>(true); }},
        RegistryBackend{"memory_sweeper",
                        [] { return std::make_unique<ManualClockHarness>(false); }}),
    BackendName);

constexpr std::chrono::seconds kWait{10};

// A callback may use the registry (register, list, subscribe) without deadlocking.
TEST(MemoryRegistryTest, CallbackMayCallTheRegistry) {
  // Everything the callbacks touch outlives the registry.
  UpdateRecorder nested;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  auto registry = NewMemoryRegistry();
  Registry* r = registry.get();
  ASSERT_THAT(r->Subscribe(Query("svc"),
                           [&, r](const WatchUpdate& update) {
                             if (!update.snapshot) return;
                             ASSERT_THAT(r->Register(TestInstance("from-callback"), {}), IsOk());
                             ASSERT_THAT(r->ListServices(Query("svc"), {}), IsOk());
                             ASSERT_THAT(r->Subscribe(Query("svc"), nested.Callback()),
                                         IsOk());
                             std::lock_guard lock(mu);
                             done = true;
                             cv.notify_all();
                           }),
              IsOk());
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, kWait, [&] { return done; }));
  }
  ASSERT_TRUE(nested.WaitForCount(1, kWait));
  EXPECT_THAT(IdsOf(nested.updates()[0].instances), ElementsAre("from-callback"));
  registry->Close();
}

// Changes queued for one subscriber arrive together, oldest first.
TEST(MemoryRegistryTest, QueuedChangesArriveInOneUpdateInOrder) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  bool in_snapshot = false;  // the snapshot callback has started and is blocked
  UpdateRecorder recorder;
  auto record = recorder.Callback();
  auto registry = NewMemoryRegistry();
  // The first callback blocks until changes have piled up behind it.
  ASSERT_THAT(registry->Subscribe(Query("svc"),
                                  [&](const WatchUpdate& update) {
                                    if (update.snapshot) {
                                      std::unique_lock lock(mu);
                                      in_snapshot = true;
                                      cv.notify_all();
                                      cv.wait_for(lock, kWait, [&] { return release; });
                                    }
                                    record(update);
                                  }),
              IsOk());
  {
    // Register only once the snapshot is being delivered, so that every change
    // queues behind it.
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, kWait, [&] { return in_snapshot; }));
  }
  for (const char* id : {"a", "b", "c"}) {
    ASSERT_THAT(registry->Register(TestInstance(id), {}), IsOk());
  }
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  ASSERT_TRUE(recorder.WaitForChange([](const Change& c) { return c.instance.id == "c"; }, kWait));
  std::vector<WatchUpdate> updates = recorder.updates();
  ASSERT_EQ(updates.size(), 2u);
  ASSERT_EQ(updates[1].changes.size(), 3u);
  EXPECT_EQ(updates[1].changes[0].instance.id, "a");
  EXPECT_EQ(updates[1].changes[2].instance.id, "c");
  EXPECT_EQ(updates[1].revision, updates[1].changes[2].revision);
  registry->Close();
}

// A registration whose TTL changes keeps the new TTL (a shorter lease lapses
// on time, not on the old deadline).
TEST(MemoryRegistryTest, ShorterTtlOnReRegistrationTakesEffect) {
  ManualClock clock;
  UpdateRecorder recorder;
  // The test sweeps; the sweeper thread is not due for an hour.
  auto registry = NewMemoryRegistry({.sweep_interval = std::chrono::hours(1), .clock = &clock});
  Instance in = TestInstance("a");
  in.ttl_seconds = 3600;
  ASSERT_THAT(registry->Register(in, {}), IsOk());
  ASSERT_THAT(registry->Subscribe(Query("svc"), recorder.Callback()), IsOk());
  in.ttl_seconds = 1;
  ASSERT_THAT(registry->Register(in, {}), IsOk());
  clock.Advance(std::chrono::milliseconds(999));
  EXPECT_EQ(client::SweepMemoryRegistryNow(*registry), 0u);
  clock.Advance(std::chrono::milliseconds(1));
  EXPECT_EQ(client::SweepMemoryRegistryNow(*registry), 1u);
  EXPECT_TRUE(recorder.WaitForChange(
      [](const Change& c) { return c.type == ChangeType::kExpired; }, kWait));
  registry->Close();
}

// A lease lapses exactly one TTL after the last renewal (registration or
// heartbeat), by the registry's clock; one with TTL 0 never does.
TEST(MemoryRegistryTest, LeaseLapsesOneTtlAfterTheLastRenewal) {
  ManualClock clock;
  // The test sweeps; the sweeper thread is not due for an hour.
  auto registry = NewMemoryRegistry({.sweep_interval = std::chrono::hours(1), .clock = &clock});
  Instance in = TestInstance("a");
  in.ttl_seconds = 10;
  Instance forever = TestInstance("forever");
  forever.ttl_seconds = 0;
  ASSERT_THAT(registry->Register(in, {}), IsOk());
  ASSERT_THAT(registry->Register(forever, {}), IsOk());
  clock.Advance(std::chrono::seconds(6));
  ASSERT_THAT(registry->UpdateService(KeyOf(in), {}), IsOk());
  clock.Advance(std::chrono::seconds(6));
  ASSERT_THAT(registry->Register(in, {}), IsOk());  // the same again renews too
  clock.Advance(std::chrono::seconds(6));
  EXPECT_EQ(client::SweepMemoryRegistryNow(*registry), 0u);
  clock.Advance(std::chrono::seconds(4));
  EXPECT_EQ(client::SweepMemoryRegistryNow(*registry), 1u);
  auto list = registry->ListServices(Query("svc"), {});
  ASSERT_THAT(list, IsOk());
  EXPECT_THAT(IdsOf(list->instances), ElementsAre("forever"));
  EXPECT_FALSE(registry->UpdateService(KeyOf(in), {}).ok());
  registry->Close();
}

// The sweeper waits on the registry's clock: advancing a ManualClock past a
// lease wakes it, and it expires the instance without any test hook.
TEST(MemoryRegistryTest, SweeperRunsOnTheRegistrysClock) {
  ManualClock clock;
  UpdateRecorder recorder;
  auto registry = NewMemoryRegistry({.sweep_interval = std::chrono::hours(1), .clock = &clock});
  Instance in = TestInstance("a");
  in.ttl_seconds = 5;
  ASSERT_THAT(registry->Register(in, {}), IsOk());
  ASSERT_THAT(registry->Subscribe(Query("svc"), recorder.Callback()), IsOk());
  ASSERT_TRUE(recorder.WaitForCount(1, kWait));
  clock.Advance(std::chrono::seconds(5));  // lapsed, but the next sweep is an hour away
  EXPECT_EQ(client::SweepMemoryRegistryNow(*registry), 1u);
  ASSERT_TRUE(recorder.WaitForChange(
      [](const Change& c) { return c.type == ChangeType::kExpired; }, kWait));

  ASSERT_THAT(registry->Register(TestInstance("b"), {}), IsOk());  // TTL 30 s
  clock.Advance(std::chrono::hours(1));  // the sweep is due, and so is b's lease
  EXPECT_TRUE(recorder.WaitForChange(
      [](const Change& c) { return c.type == ChangeType::kExpired && c.instance.id == "b"; },
      kWait));
  registry->Close();
}

// Without a clock in the options the registry runs on real time.
TEST(MemoryRegistryTest, NullClockMeansRealTime) {
  auto registry = NewMemoryRegistry({.clock = nullptr});
  ASSERT_THAT(registry->Register(TestInstance("a"), {}), IsOk());
  EXPECT_EQ(client::SweepMemoryRegistryNow(*registry), 0u);
  registry->Close();
}

}  // namespace
}  // namespace muster::testing
