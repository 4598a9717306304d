// TTL leases. Each lease has an id, the key of the instance it keeps alive and
// a deadline; renewing moves the deadline, and TakeExpired hands out the keys
// of lapsed leases.
//
// Expiry must stay cheap with a million leases, so there is no periodic scan:
// a min-heap holds one entry per lease, ordered by the deadline the lease had
// when the entry was pushed. Renewals only move the deadline stored in the
// lease (O(1), no heap work). When an entry reaches the top and its lease was
// renewed meanwhile, it is pushed again with the current deadline; so each
// lease costs one heap operation per TTL period, however often it is renewed.
//
// Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <queue>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "core/mutex.h"
#include "muster/clock.h"
#include "muster/instance.h"

namespace muster {

using LeaseId = uint64_t;

class LeaseTable {
 public:
  explicit LeaseTable(const Clock* clock) : clock_(clock) {}
  LeaseTable(const LeaseTable&) = delete;
  LeaseTable& operator=(const LeaseTable&) = delete;

  // A new lease for `key` with a full TTL. Never returns 0.
  LeaseId Grant(const InstanceKey& key, std::chrono::seconds ttl);

  // Gives lease `id` a full TTL of `ttl` from now (the TTL may change). Returns
  // false when the lease does not exist (revoked or already expired).
  bool Refresh(LeaseId id, std::chrono::seconds ttl);

  // Gives lease `id` a full TTL from now. False when it does not exist.
  bool Renew(LeaseId id);

  void Revoke(LeaseId id);

  // The lease an instance holds after a registration with TTL `ttl`: `lease`
  // given a full TTL of `ttl` from now, a new lease when it has none (0) or
  // it is gone, and none (0, `lease` revoked) when `ttl` is 0. What every
  // registry does with the lease of a registered (or re-registered) instance.
  LeaseId Keep(LeaseId lease, const InstanceKey& key, std::chrono::seconds ttl);

  struct Expired {
    LeaseId id;
    InstanceKey key;
    int64_t ttl_ns = 0;
  };
  // Removes and returns up to `max` leases whose deadline has passed.
  std::vector<Expired> TakeExpired(size_t max);

  // Puts a lease that TakeExpired handed out back, under its id, with a full
  // TTL from now (self-preservation: the registry declines to expire it).
  void Restore(Expired lease);

  size_t size() const;

 private:
  struct Lease {
    InstanceKey key;
    int64_t ttl_ns;
    int64_t deadline_ns;       // when it lapses without renewal
    int64_t heap_deadline_ns;  // the deadline of its current heap entry
  };
  struct Entry {
    int64_t deadline_ns;
    LeaseId id;
    bool operator>(const Entry& o) const { return deadline_ns > o.deadline_ns; }
  };

  int64_t NowNs() const { return clock_->Now().time_since_epoch().count(); }
  // Sets the deadline of `lease` to now + its TTL, pushing a new heap entry
  // when that is earlier than the one it has.
  void ResetDeadline(LeaseId id, Lease& lease) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Clock* const clock_;

  mutable Mutex mu_;
  LeaseId next_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<LeaseId, Lease> leases_ ABSL_GUARDED_BY(mu_);
  // Entries of revoked leases, or superseded by an earlier entry, stay until
  // they surface and are dropped then.
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap_ ABSL_GUARDED_BY(mu_);
};

}  // namespace muster
