// muster::Clock: the time source of leases and schedules, injectable so that
// tests control time. musterd's catalog and health checker and the SDK's
// MemoryRegistry, Heartbeater and Discovery all read time through one.
//
// Besides reading the time, a clock waits: code that sleeps until a moment
// (a heartbeat, a lease's deadline) waits through Clock::WaitUntil, so that a
// ManualClock's Advance wakes it as passing time would.
//
// Example (a test):
//   muster::ManualClock clock;
//   muster::MemoryRegistryOptions options;
//   options.clock = &clock;
//   ...
//   clock.Advance(std::chrono::seconds(30));  // leases lapse, schedules fire
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"

namespace muster {

class Clock {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  using duration = std::chrono::steady_clock::duration;
  virtual ~Clock() = default;
  virtual time_point Now() const = 0;

  // Blocks on `cv` (whose mutex `lock` holds) until it is notified or this
  // clock reaches `deadline`; may return early (spuriously), as
  // condition_variable::wait_until does. Callers loop on their own condition.
  virtual void WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                         time_point deadline) const = 0;

  // Waits until `done()` holds or this clock reaches `deadline`; returns done().
  template <class Predicate>
  bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                 time_point deadline, Predicate done) const {
    while (!done()) {
      if (Now() >= deadline) return done();
      WaitUntil(lock, cv, deadline);
    }
    return true;
  }
  template <class Predicate>
  bool WaitFor(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, duration d,
               Predicate done) const {
    return WaitUntil(lock, cv, Now() + d, std::move(done));
  }
};

// The real monotonic clock.
class SteadyClock final : public Clock {
 public:
  time_point Now() const override { return std::chrono::steady_clock::now(); }
  void WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                 time_point deadline) const override {
    cv.wait_until(lock, deadline);
  }
  using Clock::WaitUntil;
  static SteadyClock* Get() {
    static SteadyClock clock;
    return &clock;
  }
};

// A clock that moves only when told to. Advance wakes every waiter, which
// then sees the new time. Safe to use from any thread; must outlive whatever
// waits on it.
class ManualClock final : public Clock {
 public:
  time_point Now() const override { return time_point(std::chrono::nanoseconds(now_ns_.load())); }

  void Advance(std::chrono::nanoseconds d) {
    std::lock_guard lock(mu_);
    now_ns_ += d.count();
    for (std::condition_variable* cv : waiters_) cv->notify_all();
  }

  void WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                 time_point deadline) const override {
    {
      std::lock_guard clock_lock(mu_);
      if (Now() >= deadline) return;
      waiters_.push_back(&cv);
    }
    // An Advance between the check above and the wait below notifies before
    // this thread waits; the short real-time bound turns that lost wake-up
    // into a brief delay instead of a hang.
    cv.wait_for(lock, kLostWakeupBound);
    std::lock_guard clock_lock(mu_);
    waiters_.erase(std::find(waiters_.begin(), waiters_.end(), &cv));
  }
  using Clock::WaitUntil;

 private:
  static constexpr std::chrono::milliseconds kLostWakeupBound{5};

  std::atomic<int64_t> now_ns_{std::chrono::nanoseconds(std::chrono::hours(1)).count()};
  mutable std::mutex mu_;  // orders Advance against registering a waiter
  // The condition variables threads wait on now (one entry per waiting thread).
  mutable std::vector<std::condition_variable*> waiters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace muster
