// The state of one active check as results come in: rise/fall hysteresis
// (flap damping) and how long it has been critical. Pure bookkeeping, no I/O
// and no clock of its own, so tests drive it with any time they like.
//
// A result better than the current state counts toward a rise, a worse one
// toward a fall, one equal to it resets both. After `rise` consecutive better
// (or `fall` consecutive worse) results the state becomes the latest
// result's. The first result of a check that never ran decides at once, so a
// new instance is not kept out of discovery for `rise` intervals.
#pragma once

#include <cstdint>
#include <optional>

#include "muster/clock.h"
#include "muster/instance.h"
#include "server/health/probe.h"

namespace muster {

class CheckState {
 public:
  // Starts from the check's recorded state; an empty output means it never
  // ran. `now` starts the critical clock when that state is critical.
  CheckState(const Check& check, Clock::time_point now);

  struct Change {
    Health from;
    Health to;
  };
  // Takes one result observed at `now`; returns the change it completes.
  std::optional<Change> Observe(ProbeResult result, Clock::time_point now);

  Health status() const { return status_; }
  // The latest result (status and output), or nothing before the first.
  const std::optional<ProbeResult>& last() const { return last_; }
  // Consecutive results toward a change not yet made (0: none pending).
  uint32_t streak() const { return streak_; }
  // Whether the check has been critical for its deregister_critical_after.
  bool DeregisterDue(Clock::time_point now) const;

 private:
  const uint32_t rise_;
  const uint32_t fall_;
  const std::chrono::milliseconds deregister_after_;
  Health status_;
  bool ran_;
  std::optional<ProbeResult> last_;
  int direction_ = 0;  // +1 counting toward a rise, -1 toward a fall
  uint32_t streak_ = 0;
  Clock::time_point critical_since_;
};

}  // namespace muster
