// The Registry conformance suite, second half: subscriptions, bad input,
// Close and concurrency (registration, listing and leases are in
// registry_conformance.cc, with the harness). Every backend that instantiates
// RegistryConformanceTest runs both halves.
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <set>
#include <thread>

#include <gmock/gmock.h>

#include "support/status_matchers.h"
#include "unit/registry/registry_conformance.h"

namespace muster::testing {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::_;

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

// A subscription with a tag filter sees an instance arrive when it gains the
// tags and leave when it loses one, and nothing of the others.
TEST_P(RegistryConformanceTest, SubscriptionFollowsTags) {
  ASSERT_THAT(registry().Register(TaggedInstance("in", {"canary", "eu"}), call_), IsOk());
  ASSERT_THAT(registry().Register(TaggedInstance("out", {"eu"}), call_), IsOk());
  UpdateRecorder& recorder = NewRecorder();
  ServiceQuery canary = Query("svc");
  canary.tags = {"canary"};
  ASSERT_THAT(registry().Subscribe(canary, recorder.Callback()), IsOk());
  ASSERT_TRUE(recorder.WaitForCount(1, kWait));
  EXPECT_THAT(IdsOf(recorder.updates()[0].instances), ElementsAre("in"));

  // "other" is never seen, "out" moves in, "in" moves out, "z" marks the end.
  ASSERT_THAT(registry().Register(TaggedInstance("other", {"eu"}), call_), IsOk());
  ASSERT_THAT(registry().Register(TaggedInstance("out", {"eu", "canary"}), call_), IsOk());
  ASSERT_THAT(registry().Register(TaggedInstance("in", {"eu"}), call_), IsOk());
  ASSERT_THAT(registry().Register(TaggedInstance("z", {"canary"}), call_), IsOk());
  ASSERT_TRUE(recorder.WaitForChange([](const Change& c) { return c.instance.id == "z"; }, kWait));

  std::vector<Change> changes = recorder.changes();
  EXPECT_THAT(ChangedIds(changes), ElementsAre("out", "in", "z"));
  EXPECT_THAT(TypesOf(changes), ElementsAre(ChangeType::kRegistered, ChangeType::kDeregistered,
                                            ChangeType::kRegistered));
  std::map<std::string, Instance> view = recorder.View();
  EXPECT_EQ(view.size(), 2u);
  EXPECT_TRUE(view.contains("out") && view.contains("z"));
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
