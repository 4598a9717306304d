#include "muster/heartbeater.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <vector>

#include "absl/base/thread_annotations.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "client/memory_registry.h"
#include "core/mutex.h"
#include "core/strings.h"
#include "muster/clock.h"
#include "support/status_matchers.h"
#include "unit/discovery/test_registry.h"

namespace muster {
namespace {

using ::muster::testing::Eventually;
using ::muster::testing::IsOk;
using ::muster::testing::MakeInstance;
using ::muster::testing::Service;
using ::muster::testing::StatusIs;
using ::testing::HasSubstr;
using std::chrono::milliseconds;

// Passes calls through to a real registry, except that while `down` is set
// every call fails with Unavailable, as a registry that cannot be reached.
class FlakyRegistry final : public Registry {
 public:
  explicit FlakyRegistry(Registry* inner) : inner_(inner) {}
  absl::StatusOr<Instance> Register(const Instance& i, const CallOptions& o) override {
    if (down) return Down();
    return inner_->Register(i, o);
  }
  absl::Status Deregister(const InstanceKey& k, const CallOptions& o) override {
    if (down) return Down();
    return inner_->Deregister(k, o);
  }
  absl::Status UpdateService(const InstanceKey& k, const CallOptions& o) override {
    ++heartbeats;
    if (down) return Down();
    return inner_->UpdateService(k, o);
  }
  absl::StatusOr<ServiceList> ListServices(const ServiceQuery& q, const CallOptions& o) override {
    if (down) return Down();
    return inner_->ListServices(q, o);
  }
  absl::StatusOr<SubscriptionId> Subscribe(const ServiceQuery& q, WatchCallback cb) override {
    return inner_->Subscribe(q, std::move(cb));
  }
  void Unsubscribe(SubscriptionId id) override { inner_->Unsubscribe(id); }
  void Close() override { inner_->Close(); }

  std::atomic<bool> down{false};
  std::atomic<int> heartbeats{0};  // UpdateService calls, failed ones included

 private:
  static absl::Status Down() { return absl::UnavailableError("connection refused"); }
  Registry* const inner_;
};

// Passes calls through to a real registry, but while `Stall` is in force
// each UpdateService and Register first waits: for the stall's length, or
// until the call's own timeout passes, whichever comes first — in which case
// it fails with DeadlineExceeded, as a registry that answers too late. Every
// call's start and timeout is recorded.
class SlowRegistry final : public Registry {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr milliseconds kForever = std::chrono::hours(1);

  struct Call {
    bool registration = false;
    Clock::time_point start;
    milliseconds timeout{0};
    bool timed_out = false;
  };

  explicit SlowRegistry(Registry* inner) : inner_(inner) {}
  ~SlowRegistry() override { Stall(milliseconds(0)); }

  absl::StatusOr<Instance> Register(const Instance& i, const CallOptions& o) override {
    if (!Wait(true, o.timeout)) return Late(o.timeout);
    return inner_->Register(i, o);
  }
  absl::Status Deregister(const InstanceKey& k, const CallOptions& o) override {
    return inner_->Deregister(k, o);
  }
  absl::Status UpdateService(const InstanceKey& k, const CallOptions& o) override {
    if (!Wait(false, o.timeout)) return Late(o.timeout);
    return inner_->UpdateService(k, o);
  }
  absl::StatusOr<ServiceList> ListServices(const ServiceQuery& q, const CallOptions& o) override {
    return inner_->ListServices(q, o);
  }
  absl::StatusOr<SubscriptionId> Subscribe(const ServiceQuery& q, WatchCallback cb) override {
    return inner_->Subscribe(q, std::move(cb));
  }
  void Unsubscribe(SubscriptionId id) override { inner_->Unsubscribe(id); }
  void Close() override { inner_->Close(); }

  // From now on (and for the calls waiting now) a call waits `delay` from its
  // start before it goes through; 0 ends the stall.
  void Stall(milliseconds delay) {
    {
      MutexLock lock(mu_);
      delay_ = delay;
    }
    changed_.NotifyAll();
  }

  std::vector<Call> calls() const {
    MutexLock lock(mu_);
    return calls_;
  }

 private:
  // Waits as the stall says; false when the call's timeout came first.
  bool Wait(bool registration, milliseconds timeout) {
    MutexLock lock(mu_);
    const size_t index = calls_.size();
    const Clock::time_point start = Clock::now();
    calls_.push_back({registration, start, timeout, false});
    for (;;) {
      const Clock::time_point through = start + delay_;
      const Clock::time_point late = start + timeout;
      const Clock::time_point now = Clock::now();
      if (now >= through) return true;
      if (now >= late) {
        calls_[index].timed_out = true;
        return false;
      }
      changed_.WaitUntil(mu_, std::min(through, late));
    }
  }

  static absl::Status Late(milliseconds timeout) {
    return absl::DeadlineExceededError(
        StrCat("no answer within the call's ", timeout.count(), " ms"));
  }

  Registry* const inner_;
  mutable Mutex mu_;
  CondVar changed_;
  milliseconds delay_ ABSL_GUARDED_BY(mu_){0};
  std::vector<Call> calls_ ABSL_GUARDED_BY(mu_);
};

class HeartbeaterTest : public ::testing::Test {
 protected:
  // Whether the registry lists `id` of "echo" now.
  bool Listed(const std::string& id) {
    auto list = registry_->ListServices(Service("echo"), {});
    if (!list.ok()) return false;
    for (const Instance& in : list->instances) {
      if (in.id == id) return true;
    }
    return false;
  }

  std::unique_ptr<Registry> registry_ = NewMemoryRegistry({.sweep_interval = milliseconds(10)});
};

// A registry and heartbeaters on one ManualClock: time passes only in Run,
// which waits after each step until every thread on the clock has acted on
// it, so each schedule fires exactly when its time comes.
class ManualHeartbeaterTest : public HeartbeaterTest {
 protected:
  ManualHeartbeaterTest() {
    registry_ = NewMemoryRegistry({.sweep_interval = std::chrono::hours(1), .clock = &clock_});
  }
  // The registry's sweeper waits on clock_, which goes before the base's members.
  ~ManualHeartbeaterTest() override { registry_.reset(); }

  HeartbeaterOptions Options() {
    HeartbeaterOptions options;
    options.clock = &clock_;
    return options;
  }

  // Waits until `threads` threads (the registry's sweeper and each running
  // heartbeater) are parked on the clock, i.e. have acted on every Advance.
  bool Settled(size_t threads) {
    return Eventually([&] { return clock_.parked() == threads; });
  }

  // Lets `total` pass in steps of `step`, settling `threads` threads after
  // each and sweeping lapsed leases; stops early (false) when `each_step`
  // answers false or the threads do not settle.
  bool Run(milliseconds total, milliseconds step, size_t threads,
           const std::function<bool()>& each_step = [] { return true; }) {
    for (milliseconds passed{0}; passed < total; passed += step) {
      clock_.Advance(step);
      if (!Settled(threads)) return false;
      client::SweepMemoryRegistryNow(*registry_);
      if (!each_step()) return false;
    }
    return true;
  }

  ManualClock clock_;
};

// An instance with a 1 s TTL stays registered for 3 s (three TTLs) because
// the heartbeater renews it; nothing ever expires.
TEST_F(ManualHeartbeaterTest, KeepsShortLeaseAlive) {
  auto expired = std::make_shared<std::atomic<int>>(0);
  auto sub = registry_->Subscribe(Service("echo"), [expired](const WatchUpdate& u) {
    for (const Change& c : u.changes) {
      if (c.type == ChangeType::kExpired || c.type == ChangeType::kDeregistered) ++*expired;
    }
  });
  ASSERT_THAT(sub, IsOk());

  Heartbeater heartbeater(registry_.get(), MakeInstance("echo", "e1", 9001, /*ttl_seconds=*/1),
                          Options());
  ASSERT_THAT(heartbeater.Start(), IsOk());
  ASSERT_TRUE(Settled(2));
  // The passing of time is the behaviour under test: check all along.
  EXPECT_TRUE(Run(std::chrono::seconds(3), milliseconds(50), 2, [&] { return Listed("e1"); }));
  EXPECT_TRUE(Listed("e1"));
  EXPECT_EQ(expired->load(), 0);
  Heartbeater::Stats stats = heartbeater.stats();
  EXPECT_EQ(stats.registrations, 1u);
  // Every 333 ms, on the first 50 ms step at or after it: every 350 ms.
  EXPECT_EQ(stats.heartbeats, 8u);
  EXPECT_EQ(stats.failures, 0u);
  registry_->Unsubscribe(*sub);
}

// Without heartbeats the same lease lapses one TTL after the registration:
// the clock the registry and the heartbeater share is what keeps it.
TEST_F(ManualHeartbeaterTest, StoppedHeartbeatsLetTheLeaseLapse) {
  HeartbeaterOptions options = Options();
  options.deregister_on_stop = false;
  Heartbeater heartbeater(registry_.get(), MakeInstance("echo", "e1", 9001, /*ttl_seconds=*/1),
                          options);
  ASSERT_THAT(heartbeater.Start(), IsOk());
  ASSERT_TRUE(Settled(2));  // the schedule starts from the registration's time
  ASSERT_TRUE(Run(milliseconds(900), milliseconds(50), 2));
  heartbeater.Stop();
  ASSERT_TRUE(Run(milliseconds(750), milliseconds(50), 1));  // renewed at 700 ms: due at 1.7 s
  EXPECT_TRUE(Listed("e1"));
  ASSERT_TRUE(Run(milliseconds(50), milliseconds(50), 1));
  EXPECT_FALSE(Listed("e1"));
}

// Removed behind its back, the instance is registered again after the next
// heartbeat answers NotFound.
TEST_F(HeartbeaterTest, RegistersAgainAfterNotFound) {
  Heartbeater heartbeater(registry_.get(), MakeInstance("echo", "e1", 9001, /*ttl_seconds=*/1), {});
  ASSERT_THAT(heartbeater.Start(), IsOk());
  ASSERT_THAT(registry_->Deregister({"default", "echo", "e1"}, {}), IsOk());
  EXPECT_TRUE(Eventually([&] { return heartbeater.stats().registrations >= 2; }));
  EXPECT_TRUE(Listed("e1"));
  Heartbeater::Stats stats = heartbeater.stats();
  EXPECT_GE(stats.failures, 1u);
  EXPECT_THAT(stats.last_error, StatusIs(absl::StatusCode::kNotFound, HasSubstr("e1")));
}

// Stop deregisters the instance (by default) and is idempotent.
TEST_F(HeartbeaterTest, StopDeregisters) {
  Heartbeater heartbeater(registry_.get(), MakeInstance("echo", "e1", 9001, 30), {});
  ASSERT_THAT(heartbeater.Start(), IsOk());
  ASSERT_TRUE(Listed("e1"));
  heartbeater.Stop();
  EXPECT_FALSE(Listed("e1"));
  heartbeater.Stop();
  EXPECT_EQ(heartbeater.stats().failures, 0u);
}

// With deregister_on_stop off, Stop leaves the instance to its lease.
TEST_F(HeartbeaterTest, StopCanLeaveInstanceRegistered) {
  HeartbeaterOptions options;
  options.deregister_on_stop = false;
  Heartbeater heartbeater(registry_.get(), MakeInstance("echo", "e1", 9001, 30), options);
  ASSERT_THAT(heartbeater.Start(), IsOk());
  heartbeater.Stop();
  EXPECT_TRUE(Listed("e1"));
}

// Stop wakes the thread at once, even in the middle of a long wait (a day's
// TTL renews every 8 hours).
TEST_F(HeartbeaterTest, StopDoesNotWaitForNextHeartbeat) {
  Heartbeater heartbeater(registry_.get(), MakeInstance("echo", "e1", 9001, 86400), {});
  ASSERT_THAT(heartbeater.Start(), IsOk());
  const auto start = std::chrono::steady_clock::now();
  heartbeater.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_FALSE(Listed("e1"));
}

// A failed first registration is returned and nothing runs.
TEST_F(HeartbeaterTest, StartReturnsRegistrationError) {
  Instance bad = MakeInstance("echo", "e1", 9001);
  bad.address = "no port";
  Heartbeater heartbeater(registry_.get(), bad, {});
  EXPECT_THAT(heartbeater.Start(), StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  Heartbeater::Stats stats = heartbeater.stats();
  EXPECT_EQ(stats.registrations, 0u);
  EXPECT_EQ(stats.failures, 1u);
  heartbeater.Stop();  // nothing to stop
}

// A Stop before any Start is final too: a later Start is refused and
// registers nothing.
TEST_F(HeartbeaterTest, StartAfterStopIsRefused) {
  Heartbeater heartbeater(registry_.get(), MakeInstance("echo", "e1", 9001, 30), {});
  heartbeater.Stop();
  EXPECT_THAT(heartbeater.Start(), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("stopped")));
  EXPECT_FALSE(Listed("e1"));
  EXPECT_EQ(heartbeater.stats().registrations, 0u);
}

// An instance that is already gone when Stop deregisters it (it lapsed, or
// someone removed it) is what Stop wanted: not a failure.
TEST_F(HeartbeaterTest, StopOfVanishedInstanceIsNotAFailure) {
  Heartbeater heartbeater(registry_.get(), MakeInstance("echo", "e1", 9001, 0), {});
  ASSERT_THAT(heartbeater.Start(), IsOk());
  ASSERT_THAT(registry_->Deregister({"default", "echo", "e1"}, {}), IsOk());
  heartbeater.Stop();
  EXPECT_EQ(heartbeater.stats().failures, 0u);
  EXPECT_THAT(heartbeater.stats().last_error, IsOk());
}

// A registry outage shorter than the lease: heartbeats fail and are retried
// with backoff; once the registry answers again the instance is still
// registered (no re-registration needed) and the beats are back to every
// ttl * fraction.
TEST_F(ManualHeartbeaterTest, RidesOutAnOutageAndReturnsToItsCadence) {
  FlakyRegistry flaky(registry_.get());
  HeartbeaterOptions options = Options();
  options.fraction = 0.1;  // every 200 ms of a 2 s lease
  options.retry_initial = milliseconds(10);
  options.retry_max = milliseconds(20);
  Heartbeater heartbeater(&flaky, MakeInstance("echo", "e1", 9001, /*ttl_seconds=*/2), options);
  ASSERT_THAT(heartbeater.Start(), IsOk());
  ASSERT_TRUE(Settled(2));
  ASSERT_TRUE(Run(milliseconds(200), milliseconds(10), 2));
  ASSERT_EQ(heartbeater.stats().heartbeats, 1u);

  flaky.down = true;
  // Tries 200 ms after the last beat, then after 10, 20, 20, 20 ms...
  ASSERT_TRUE(Run(milliseconds(270), milliseconds(10), 2));
  EXPECT_EQ(heartbeater.stats().failures, 5u);
  EXPECT_THAT(heartbeater.stats().last_error, StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
  flaky.down = false;
  ASSERT_TRUE(Run(milliseconds(20), milliseconds(10), 2));  // the next try gets through
  ASSERT_EQ(heartbeater.stats().heartbeats, 2u);

  // Back to the cadence: over 1 s, five beats (every 200 ms), not the fifty
  // of the 20 ms retry delay.
  const int calls = flaky.heartbeats.load();
  ASSERT_TRUE(Run(milliseconds(1000), milliseconds(10), 2));
  EXPECT_EQ(flaky.heartbeats.load() - calls, 5);
  EXPECT_TRUE(Listed("e1"));
  EXPECT_EQ(heartbeater.stats().registrations, 1u);  // the outage was shorter than the lease
}

// Start twice is refused; the first registration stands.
TEST_F(HeartbeaterTest, SecondStartIsRefused) {
  Heartbeater heartbeater(registry_.get(), MakeInstance("echo", "e1", 9001, 30), {});
  ASSERT_THAT(heartbeater.Start(), IsOk());
  EXPECT_THAT(heartbeater.Start(), StatusIs(absl::StatusCode::kFailedPrecondition, ::testing::_));
  EXPECT_EQ(heartbeater.stats().registrations, 1u);
}

// An instance without a lease (TTL 0) is registered once and never renewed:
// an hour later only the registry's sweeper waits on the clock (no heartbeat
// thread) and nothing was sent.
TEST_F(ManualHeartbeaterTest, NoLeaseMeansNoHeartbeats) {
  Heartbeater heartbeater(registry_.get(), MakeInstance("echo", "e1", 9001, 0), Options());
  ASSERT_THAT(heartbeater.Start(), IsOk());
  ASSERT_TRUE(Settled(1));
  clock_.Advance(std::chrono::hours(1));
  ASSERT_TRUE(Settled(1));
  EXPECT_TRUE(Listed("e1"));
  Heartbeater::Stats stats = heartbeater.stats();
  EXPECT_EQ(stats.registrations, 1u);
  EXPECT_EQ(stats.heartbeats, 0u);
  heartbeater.Stop();
  EXPECT_FALSE(Listed("e1"));
}

// While the registry fails, the heartbeater keeps retrying with a growing
// delay, and records the error.
TEST_F(ManualHeartbeaterTest, RetriesWithBackoffWhileRegistryFails) {
  HeartbeaterOptions options = Options();
  options.retry_initial = milliseconds(10);
  options.retry_max = milliseconds(40);
  Heartbeater heartbeater(registry_.get(), MakeInstance("echo", "e1", 9001, 1), options);
  ASSERT_THAT(heartbeater.Start(), IsOk());
  registry_->Close();  // every call now fails with FailedPrecondition; the sweeper ends
  ASSERT_TRUE(Settled(1));
  // The first beat at 333 ms (on the 340 ms step) fails; then 10, 20, 40 ms.
  ASSERT_TRUE(Run(milliseconds(410), milliseconds(10), 1));
  EXPECT_EQ(heartbeater.stats().failures, 4u);
  EXPECT_THAT(heartbeater.stats().last_error,
              StatusIs(absl::StatusCode::kFailedPrecondition, ::testing::_));
  // Capped at 40 ms between tries: ten more in 400 ms.
  ASSERT_TRUE(Run(milliseconds(400), milliseconds(10), 1));
  EXPECT_EQ(heartbeater.stats().failures, 14u);
}

// A heartbeat that hangs is given up when the lease ends, not after the
// call's 5 s timeout: with a 1 s TTL the first beat (at ~333 ms) may take
// only the ~667 ms left on the lease, and the heartbeater tries again soon
// after, instead of noticing four seconds after the lease lapsed. Once the
// registry answers, the instance (expired meanwhile) is registered again.
TEST_F(HeartbeaterTest, HungHeartbeatIsBoundedByTheLease) {
  SlowRegistry slow(registry_.get());
  Heartbeater heartbeater(&slow, MakeInstance("echo", "e1", 9001, /*ttl_seconds=*/1), {});
  const auto start = std::chrono::steady_clock::now();
  ASSERT_THAT(heartbeater.Start(), IsOk());
  slow.Stall(SlowRegistry::kForever);

  // Before the change the second call came only after the first one's 5 s.
  const bool retried = Eventually(
      [&] { return slow.calls().size() >= 3; }, milliseconds(3000));
  const std::vector<SlowRegistry::Call> calls = slow.calls();
  slow.Stall(milliseconds(0));  // answer again (and let a hung call go)
  ASSERT_TRUE(retried) << "the heartbeater did not try again within 3 s; calls: " << calls.size();

  ASSERT_TRUE(calls[0].registration);  // Start's
  EXPECT_EQ(calls[0].timeout, milliseconds(5000));
  const SlowRegistry::Call& beat = calls[1];
  EXPECT_FALSE(beat.registration);
  EXPECT_TRUE(beat.timed_out);
  // The time left on the lease: 1 s from Start's registration.
  EXPECT_LE(beat.start + beat.timeout, start + std::chrono::seconds(1) + milliseconds(50));
  EXPECT_GE(beat.timeout, milliseconds(100));  // the floor
  // The next try comes right after the lease's end (retry_initial, 200 ms).
  EXPECT_LT(calls[2].start - start, milliseconds(1500));

  EXPECT_TRUE(Eventually([&] { return heartbeater.stats().registrations >= 2; }));
  EXPECT_TRUE(Eventually([&] { return Listed("e1"); }));
}

// Once the lease has lapsed there is nothing left to save: the calls get
// their full timeout again (not the 100 ms floor), so a registry that now
// answers slowly (300 ms) still gets the instance registered again.
TEST_F(HeartbeaterTest, AfterTheLeaseLapsedCallsGetTheirFullTimeout) {
  SlowRegistry slow(registry_.get());
  Heartbeater heartbeater(&slow, MakeInstance("echo", "e1", 9001, /*ttl_seconds=*/1), {});
  ASSERT_THAT(heartbeater.Start(), IsOk());
  slow.Stall(SlowRegistry::kForever);
  // The first beat hangs until the lease ends; from then on every call takes 300 ms.
  ASSERT_TRUE(Eventually([&] {
    auto calls = slow.calls();
    return calls.size() >= 2 && calls[1].timed_out;
  }, milliseconds(6000)));
  slow.Stall(milliseconds(300));

  EXPECT_TRUE(Eventually([&] { return heartbeater.stats().registrations >= 2; }))
      << "not registered again; last error: " << heartbeater.stats().last_error;
  EXPECT_TRUE(Listed("e1"));
  const std::vector<SlowRegistry::Call> calls = slow.calls();
  ASSERT_GE(calls.size(), 4u);  // Start's, the hung beat, a beat (NotFound), a registration
  EXPECT_FALSE(calls[2].registration);
  EXPECT_EQ(calls[2].timeout, milliseconds(5000));
  EXPECT_FALSE(calls[2].timed_out);
  EXPECT_TRUE(calls[3].registration);
  EXPECT_EQ(calls[3].timeout, milliseconds(5000));
  EXPECT_FALSE(calls[3].timed_out);
  slow.Stall(milliseconds(0));
}

}  // namespace
}  // namespace muster
