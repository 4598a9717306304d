// Self-preservation: when leases lapse en masse, the registry has more likely
// lost its network than the instances their lives, so it stops expiring
// (compare Eureka's renewal-percent-threshold).
//
// Each sweep asks Hold() before expiring what is due. The registry holds when,
// counting the leases that expired within the last `window` plus those due now,
// more than `threshold` of all leases (live ones and those recently expired)
// would be gone, and there are at least `min_leases` of them (a small registry
// losing a few instances is normal). While it holds, due leases get a full TTL
// again instead of expiring. Once heartbeats return, the held leases are
// renewed; those that are not come due again one TTL later, few enough now to
// fall below the threshold, and expire: instances that really died expire one
// TTL later than they would have.
//
// Used by the catalog's committer thread only; active() may be read from any.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <utility>

#include "muster/clock.h"

namespace muster {

struct SelfPreservationOptions {
  // Share of all leases that may lapse within `window` before expiry stops;
  // 0 turns self-preservation off.
  double threshold = 0.5;
  std::chrono::milliseconds window = std::chrono::minutes(1);
  size_t min_leases = 10;
};

class SelfPreservation {
 public:
  SelfPreservation(SelfPreservationOptions options, const Clock* clock)
      : options_(options), clock_(clock) {}

  // `due` leases lapsed now (the longest TTL among them: `longest_ttl`), `live`
  // are still alive. True: keep them all (the caller gives them a full TTL
  // again); false: expire them (recorded). Called at every sweep, also with
  // nothing due: held leases that were renewed meanwhile never come due
  // again, so once the longest of them would have, holding ends.
  bool Hold(size_t due, size_t live, std::chrono::nanoseconds longest_ttl);

  bool active() const { return active_.load(std::memory_order_relaxed); }

 private:
  const SelfPreservationOptions options_;
  const Clock* const clock_;
  std::deque<std::pair<Clock::time_point, size_t>> expired_;  // (when, how many), oldest first
  size_t expired_in_window_ = 0;
  // While holding: when the leases held last come due again (plus a second).
  Clock::time_point recheck_at_{};
  std::atomic<bool> active_{false};
};

}  // namespace muster
