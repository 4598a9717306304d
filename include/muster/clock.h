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
#include <cstddef>
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
  // condition_variable::wait_until does, so callers loop on their condition.
  // Any lock and condition variable types (std::condition_variable_any too).
  template <class Lock, class CondVar>
  void WaitUntil(Lock& lock, CondVar& cv, time_point deadline) const {
    Waker waker{[](void* c) { static_cast<CondVar*>(c)->notify_all(); }, &cv, deadline};
    AddWaker(&waker);
    if (Now() < deadline) cv.wait_for(lock, RealWait(deadline));
    RemoveWaker(&waker);
  }

  // Waits until `done()` holds or this clock reaches `deadline`; returns done().
  template <class Lock, class CondVar, class Predicate>
  bool WaitUntil(Lock& lock, CondVar& cv, time_point deadline, Predicate done) const {
    while (!done()) {
      if (Now() >= deadline) return done();
      WaitUntil(lock, cv, deadline);
    }
    return true;
  }
  template <class Lock, class CondVar, class Predicate>
  bool WaitFor(Lock& lock, CondVar& cv, duration d, Predicate done) const {
    return WaitUntil(lock, cv, Now() + d, std::move(done));
  }

 protected:
  // What a waiting thread is woken by when the clock jumps.
  struct Waker {
    void (*wake)(void*);
    void* arg;
    time_point deadline;  // what the waiting thread waits for
  };
  // Clocks that jump (ManualClock) call every added waker when they do.
  virtual void AddWaker(Waker*) const {}
  virtual void RemoveWaker(Waker*) const {}
  // The real time to wait for `deadline` (not yet reached) at most.
  virtual duration RealWait(time_point deadline) const = 0;
};

// The real monotonic clock.
class SteadyClock final : public Clock {
 public:
  time_point Now() const override { return std::chrono::steady_clock::now(); }
  static SteadyClock* Get() {
    static SteadyClock clock;
    return &clock;
  }

 private:
  duration RealWait(time_point deadline) const override { return deadline - Now(); }
};

// A clock that moves only when told to. Advance wakes every waiter, which
// then sees the new time. Safe to use from any thread; must outlive whatever
// waits on it.
class ManualClock final : public Clock {
 public:
  time_point Now() const override { return time_point(std::chrono::nanoseconds(now_ns_.load())); }

  // Moves the time forward and wakes every parked waiter (who parks again if
  // its deadline is still ahead).
  void Advance(std::chrono::nanoseconds d) {
    std::lock_guard lock(mu_);
    now_ns_ += d.count();
    for (Waker* w : wakers_) w->wake(w->arg);
    wakers_.clear();
  }

  // How many threads wait on this clock now for a moment still ahead, i.e.
  // have acted on every Advance so far. A test that knows how many threads
  // wait on the clock waits for this count before advancing again, so that
  // each has acted on the last Advance (and set its next deadline from the
  // new time). A waiter whose deadline has come does not count: it may have
  // registered just after an Advance that it has not acted on yet (it looked
  // at the time before the Advance and waits only to find the time passed).
  size_t parked() const {
    std::lock_guard lock(mu_);
    const time_point now = Now();
    return static_cast<size_t>(std::count_if(wakers_.begin(), wakers_.end(),
                                             [now](const Waker* w) { return w->deadline > now; }));
  }

 private:
  // An Advance between a waiter's look at the time and its wait notifies
  // before the waiter waits; this short real-time bound on every wait turns
  // that lost wake-up into a brief delay instead of a hang.
  static constexpr std::chrono::milliseconds kLostWakeupBound{5};

  void AddWaker(Waker* w) const override {
    std::lock_guard lock(mu_);
    wakers_.push_back(w);
  }
  void RemoveWaker(Waker* w) const override {
    std::lock_guard lock(mu_);
    auto it = std::find(wakers_.begin(), wakers_.end(), w);
    if (it != wakers_.end()) wakers_.erase(it);  // Advance removed the ones it woke
  }
  duration RealWait(time_point) const override { return kLostWakeupBound; }

  std::atomic<int64_t> now_ns_{std::chrono::nanoseconds(std::chrono::hours(1)).count()};
  mutable std::mutex mu_;  // orders Advance against adding and removing wakers
  // Guarded by mu_ (a public header: std::mutex, whose annotations clang
  // cannot check, so the guard is said here).
  mutable std::vector<Waker*> wakers_;  // one per waiting thread
};

}  // namespace muster
