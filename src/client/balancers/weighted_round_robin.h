// "weighted_round_robin": smooth weighted round robin, as nginx
// (ngx_http_upstream_get_peer). Each enabled instance has a current weight,
// 0 at first. A pick adds every instance's weight to its current weight,
// picks the instance with the largest current weight (the first on a tie)
// and subtracts the total weight from it. Over any window of
// total / gcd(weights) consecutive picks, every instance is picked exactly in
// proportion to its weight, and the picks of a heavy instance are spread out:
// weights 5, 1, 1 give a a b a c a a.
//
// Two ways to run it, chosen at Update:
//   - Cycle: the sequence is periodic with period P = total / gcd(weights).
//     When building one period costs little (n * P steps within
//     max_cycle_work), Update precomputes it, and a Pick reads the next
//     entry. As round_robin (and brpc's weighted round robin), the position
//     is per thread, starting at a random point of the cycle: a Pick writes
//     nothing shared, so threads do not contend. Each thread's picks are the
//     smooth sequence, exact over every P of them; all threads together
//     are exact over whole cycles of each. The common case: equal or few
//     distinct weights (100, 200, 50) give P = O(n).
//   - Live: otherwise (weights with a long period) a Pick runs the O(n) step
//     on one shared sequence under the state's spin lock, as nginx does
//     under its upstream zone lock: exact over every P picks of all threads
//     together. Picks on this path are serialised: throughput is that of
//     one thread (measured: a std::mutex, sleeping in the kernel when
//     contended, gave a quarter of that with two threads).
// An Update starts the new list's sequence (live: from zero current weights;
// cycle: each thread at its old position modulo the new period).
//
// Excluded instances: in live mode (as nginx's "tried" peers) the step runs
// over the instances that are not excluded; the predicate is evaluated
// before the lock is taken, never under it. In cycle mode, when the
// instance in turn is excluded, the turn goes to one of the others at random
// in proportion to weight. (Not to the next one in the cycle: that would
// hand all of a long-excluded heavy instance's turns to whichever instance
// follows it.) Either way the rest keep their proportions.
#pragma once

#include <cstdint>
#include <atomic>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "client/balancers/snapshot_balancer.h"

namespace muster {

// Guards the live step: test-and-test-and-set, with a pause per spin; after
// kSpins failed spins it yields the CPU, so that a holder that was preempted
// (more threads than cores) is not spun on for a whole time slice. The
// step it guards is one pass over the weights (about 1 ns per instance: a
// microsecond at 1000), shorter than a futex sleep and wake-up.
class ABSL_LOCKABLE StepLock {
 public:
  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    for (int spins = 0;;) {
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      while (locked_.load(std::memory_order_relaxed)) {
        if (++spins < kSpins) {
#if defined(__x86_64__) || defined(__i386__)
          __builtin_ia32_pause();
#endif
        } else {
          std::this_thread::yield();
        }
      }
    }
  }
  void unlock() ABSL_UNLOCK_FUNCTION() { locked_.store(false, std::memory_order_release); }

 private:
  static constexpr int kSpins = 100;
  std::atomic<bool> locked_{false};
};

// Holds a StepLock for its scope: std::lock_guard carries no annotations, so
// clang's thread-safety check (core/mutex.h) would not see the lock held.
class ABSL_SCOPED_LOCKABLE StepLockHolder {
 public:
  explicit StepLockHolder(StepLock& lock) ABSL_EXCLUSIVE_LOCK_FUNCTION(lock) : lock_(lock) {
    lock_.lock();
  }
  ~StepLockHolder() ABSL_UNLOCK_FUNCTION() { lock_.unlock(); }
  StepLockHolder(const StepLockHolder&) = delete;
  StepLockHolder& operator=(const StepLockHolder&) = delete;

 private:
  StepLock& lock_;
};

class WeightedRoundRobinBalancer final : public SnapshotBalancer {
 public:
  // Largest n * P (steps) that Update spends to precompute a cycle: about
  // 4M additions, a few milliseconds, at most 512 KiB of table.
  static constexpr uint64_t kDefaultMaxCycleWork = uint64_t{1} << 22;
  static constexpr uint64_t kMaxCycleLength = uint64_t{1} << 17;

  // `max_cycle_work`: 0 forces live mode (tests compare the two).
  explicit WeightedRoundRobinBalancer(BalancerOptions options,
                                      uint64_t max_cycle_work = kDefaultMaxCycleWork);

  absl::StatusOr<Picked> Pick(const PickRequest& request) override;
  std::string_view name() const override { return "weighted_round_robin"; }

 private:
  struct State : BalancerState {
    std::vector<int64_t> weights;  // of enabled[k], divided by their gcd
    // Cycle mode: one period of the sequence, as positions in `enabled`;
    // empty in live mode. Each thread's position is its slot's cursor.
    std::vector<uint32_t> cycle;
    // Live mode: the current weights.
    mutable StepLock step_lock;
    mutable std::vector<int64_t> current ABSL_GUARDED_BY(step_lock);
  };

  std::shared_ptr<const BalancerState> BuildState(InstanceList instances,
                                                  const BalancerState* previous) override;

  const uint64_t max_cycle_work_;
};

}  // namespace muster
