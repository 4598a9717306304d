// The memory backend against the conformance suite, plus what only it promises.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "muster/registry.h"
#include "support/status_matchers.h"
#include "unit/registry/registry_conformance.h"

namespace muster::testing {
namespace {

using ::testing::ElementsAre;

std::unique_ptr<Registry> FastSweepingMemoryRegistry() {
  return NewMemoryRegistry({.sweep_interval = std::chrono::milliseconds(20)});
}

INSTANTIATE_TEST_SUITE_P(Memory, RegistryConformanceTest,
                         ::testing::Values(BackendFromFactory("memory",
                                                              FastSweepingMemoryRegistry),
                                           BackendFromFactory("memory_default_sweep", [] {
                                             return NewMemoryRegistry();
                                           })),
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
  UpdateRecorder recorder;
  auto registry = FastSweepingMemoryRegistry();
  Instance in = TestInstance("a");
  in.ttl_seconds = 3600;
  ASSERT_THAT(registry->Register(in, {}), IsOk());
  ASSERT_THAT(registry->Subscribe(Query("svc"), recorder.Callback()), IsOk());
  in.ttl_seconds = 1;
  ASSERT_THAT(registry->Register(in, {}), IsOk());
  EXPECT_TRUE(recorder.WaitForChange(
      [](const Change& c) { return c.type == ChangeType::kExpired; }, kWait));
  registry->Close();
}

}  // namespace
}  // namespace muster::testing
