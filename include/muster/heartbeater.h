// muster::Heartbeater keeps one instance registered: it registers it, renews
// its lease at a fraction of the TTL, registers it again after a NotFound
// (registry restarted without it, or the lease lapsed), rides out registry
// outages by retrying, and deregisters it on Stop.
//
// Example:
//   muster::Heartbeater heartbeater(registry.get(), me, {});
//   if (auto s = heartbeater.Start(); !s.ok()) return s;
//   ...serve...
//   heartbeater.Stop();  // deregisters
//
// Thread-safe; runs its own thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "muster/clock.h"
#include "muster/instance.h"
#include "muster/registry.h"

namespace muster {

struct HeartbeaterOptions {
  // Heartbeat every ttl * fraction (an instance with ttl 0 is only registered).
  double fraction = 1.0 / 3.0;
  // Retry delay after a failed heartbeat or registration, doubling up to max.
  std::chrono::milliseconds retry_initial = std::chrono::milliseconds(200);
  std::chrono::milliseconds retry_max = std::chrono::seconds(5);
  // Bounds every call to the registry. A heartbeat or re-registration made
  // while the lease is still alive is bounded by the time left on it too (at
  // least 100 ms), so that a registry that hangs is given up on when the
  // lease ends, not a whole call timeout later; once the lease has lapsed,
  // calls get this full timeout again.
  CallOptions call;
  bool deregister_on_stop = true;
  // The time of the schedule, the retry backoff and the lease's end; must
  // outlive the Heartbeater. A test passes a ManualClock and advances it.
  const Clock* clock = SteadyClock::Get();
};

class Heartbeater {
 public:
  // `registry` must outlive the Heartbeater.
  Heartbeater(Registry* registry, Instance instance, HeartbeaterOptions options);
  ~Heartbeater();  // Stop()
  Heartbeater(const Heartbeater&) = delete;
  Heartbeater& operator=(const Heartbeater&) = delete;

  // Registers the instance (one attempt, bounded by options.call) and starts
  // heartbeating. A failed first registration is returned and nothing runs
  // (Start may be called again). FailedPrecondition once started or stopped.
  absl::Status Start();

  // Stops heartbeating and, if configured, deregisters. Idempotent; a Start
  // after it is refused.
  void Stop();

  struct Stats {
    uint64_t heartbeats = 0;       // successful renewals
    uint64_t registrations = 0;    // successful registrations, the first included
    uint64_t failures = 0;         // failed calls
    absl::Status last_error;
  };
  Stats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace muster
