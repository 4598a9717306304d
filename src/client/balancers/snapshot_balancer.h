// SnapshotBalancer: what every balancer policy shares. Immutable per-Update
// snapshots that Pick reads without a global lock, per-thread scratch, the
// source of randomness, and the "nothing to pick" errors.
//
// Publication. Update builds a new immutable state (each policy precomputes
// what its Pick needs: enabled indices, cumulative weights, a ring, a lookup
// table) and publishes it under a mutex with a new version number. Pick does
// not take that mutex: each thread keeps a small direct-mapped cache of
// (balancer, version) -> state. A Pick loads the balancer's version (one
// atomic load, no store) and, when its cache entry holds that version, uses
// the cached state. The first Pick on a thread after an Update (or after
// another balancer took over the entry) takes the mutex to refresh the entry.
// A Pick racing an Update sees either the old or the new state, whole.
//
// Reference counts. A Picked holds a shared_ptr to the instance list. Had
// every Picked shared one control block, every Pick on every thread would
// increment the same atomic counter, a cache line bouncing between cores. So a
// thread's cache entry owns the state through a control block of its own and
// hands out aliasing shared_ptrs to the same vector: the counter a Pick
// touches is one that only its thread uses (until the Picked travels).
//
// Retention. A cache entry keeps the state it holds alive until its thread
// refreshes the entry or exits: besides the current states, a thread keeps at
// most kThreadCacheSlots superseded ones (for instance the last state of a
// destroyed balancer) alive.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "core/mutex.h"
#include "muster/balancer.h"

namespace muster {

// What a policy's Pick reads: built once per Update, never changed after
// publication (a policy's mutable parts, such as least_request's counters,
// are atomics or guarded by their own mutex). Policies derive from it.
struct BalancerState {
  virtual ~BalancerState() = default;

  InstanceList instances;         // never null: Update(nullptr) gives an empty list
  std::vector<uint32_t> enabled;  // indices into *instances of the enabled ones, in order

  const Instance& at(uint32_t index) const { return (*instances)[index]; }
};

// An instance's weight clamped to the registry's range (1..10000), so that a
// list built by hand with weight 0 cannot divide by zero or starve.
uint32_t EffectiveWeight(const Instance& instance);

// Number of direct-mapped entries in each thread's snapshot cache. Balancers
// get consecutive ids, so up to this many balancers used by one thread do
// not evict each other.
inline constexpr size_t kThreadCacheSlots = 32;

// A thread's cache entry for one balancer, and that thread's scratch space
// for it (round robin keeps its position here). Only its thread touches it.
struct BalancerThreadSlot {
  uint64_t owner = 0;    // id of the balancer the entry belongs to; 0: none
  uint64_t version = 0;  // version of `state`
  const BalancerState* state = nullptr;
  // Aliases state->instances; its control block is this thread's own and
  // owns the state.
  InstanceList list;
  uint64_t cursor = 0;   // policy scratch, reset when the entry changes owner
};

// Each thread's snapshot cache, indexed by balancer id modulo its size.
inline thread_local BalancerThreadSlot balancer_thread_cache[kThreadCacheSlots];

class SnapshotBalancer : public Balancer {
 public:
  SnapshotBalancer(const SnapshotBalancer&) = delete;
  SnapshotBalancer& operator=(const SnapshotBalancer&) = delete;

  // Builds the policy's state for `instances` and publishes it. Updates are
  // serialised among themselves; Picks keep running meanwhile.
  void Update(InstanceList instances) final;

 protected:
  explicit SnapshotBalancer(BalancerOptions options);

  // Builds the state for `instances` (never null). `previous` is the state
  // published last (nullptr on the first call), for policies that carry
  // something over (least_request's in-flight counts). Runs under
  // update_mu_, never concurrently with itself.
  virtual std::shared_ptr<const BalancerState> BuildState(InstanceList instances,
                                                          const BalancerState* previous) = 0;

  using ThreadSlot = BalancerThreadSlot;

  // The current state as a Pick sees it.
  struct Snapshot {
    const BalancerState* state;
    InstanceList list;  // keeps *state alive for the whole Pick; the Picked's list
    // This thread's scratch for this balancer. Valid memory for the thread's
    // life, but an `excluded` predicate that picks from another balancer may
    // take the entry over: check slot->owner == id() before writing after
    // calling the predicate.
    ThreadSlot* slot;
  };

  // The current state, from this thread's cache (no lock, no shared write)
  // when it is up to date. Must be called only after the derived constructor
  // published a first state (it calls Update(nullptr)).
  Snapshot Acquire() {
    ThreadSlot& slot = CurrentSlotImpl();
    return Snapshot{slot.state, slot.list, &slot};
  }

  // This thread's cache entry for this balancer, refreshed if stale. Cheaper
  // than Acquire (no reference is taken): for code that calls no user code
  // while it reads the state.
  const ThreadSlot& CurrentSlot() { return CurrentSlotImpl(); }

  uint64_t id() const { return id_; }

  // A uniform 64-bit number: the injected BalancerOptions::random (called
  // from every thread that picks, so it must be thread-safe when Picks run
  // concurrently), or else this thread's splitmix64 generator.
  uint64_t Random() const { return options_.random ? options_.random() : ThreadRandom(); }

  static Picked MakePicked(Snapshot&& snapshot, uint32_t index) {
    return Picked(std::move(snapshot.list), index);
  }

  // Unavailable: "no instances to pick from", "all N instances are disabled"
  // or "all N enabled instances are excluded", whichever holds for `state`
  // once a policy found nothing to pick.
  static absl::Status NothingToPick(const BalancerState& state);

  // Indices of the enabled instances that `excluded` does not reject, in
  // list order. For the slow path after a policy's natural choice was
  // excluded; calls the predicate once per enabled instance.
  static std::vector<uint32_t> Allowed(const BalancerState& state,
                                       const std::function<bool(const Instance&)>& excluded);

  // One of `indices` (instance indices, not empty) chosen at random with
  // probability proportional to weight. O(size).
  uint32_t WeightedChoice(const BalancerState& state, const std::vector<uint32_t>& indices) const;

  static bool IsExcluded(const PickRequest& request, const Instance& instance) {
    return request.excluded && request.excluded(instance);
  }

  // Fills `state.instances` (an empty list for null) and `state.enabled`.
  static void InitState(BalancerState& state, InstanceList instances);

  const BalancerOptions& options() const { return options_; }

 private:
  ThreadSlot& CurrentSlotImpl() {
    ThreadSlot& slot = balancer_thread_cache[id_ % kThreadCacheSlots];
    if (slot.owner != id_ || slot.version != version_.load(std::memory_order_acquire)) {
      Refresh(slot);
    }
    return slot;
  }
  // Points `slot` at the published state (taking mu_).
  void Refresh(ThreadSlot& slot);
  static uint64_t ThreadRandom();

  // Constant after construction.
  const BalancerOptions options_;
  const uint64_t id_;  // unique in the process, never reused; never 0

  // Serialises Updates; held while a state is built.
  Mutex update_mu_;
  std::shared_ptr<const BalancerState> last_built_ ABSL_GUARDED_BY(update_mu_);

  // The published state and its version; readers take mu_ only to refresh
  // their cache entry.
  Mutex mu_;
  std::shared_ptr<const BalancerState> current_ ABSL_GUARDED_BY(mu_);
  uint64_t current_version_ ABSL_GUARDED_BY(mu_) = 0;
  // A copy of current_version_ that Picks read without mu_. Stored after
  // current_ changes (under mu_), so a reader that sees a new version and
  // takes mu_ finds the state of that version or a newer one.
  std::atomic<uint64_t> version_{0};
};

}  // namespace muster
