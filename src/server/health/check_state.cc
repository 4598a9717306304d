#include "server/health/check_state.h"

namespace muster {

CheckState::CheckState(const Check& check, Clock::time_point now)
    : rise_(check.rise),
      fall_(check.fall),
      deregister_after_(check.deregister_critical_after),
      status_(check.status),
      ran_(!check.output.empty()),
      critical_since_(now) {}

std::optional<CheckState::Change> CheckState::Observe(ProbeResult result, Clock::time_point now) {
  const Health seen = result.status;
  last_ = std::move(result);
  const Health before = status_;
  if (!ran_) {
    ran_ = true;
    status_ = seen;
  } else if (seen == status_) {
    direction_ = 0;
    streak_ = 0;
  } else {
    // Health is ordered best to worst: a smaller value is a rise.
    const int direction = seen < status_ ? 1 : -1;
    if (direction != direction_) {
      direction_ = direction;
      streak_ = 0;
    }
    if (++streak_ >= (direction > 0 ? rise_ : fall_)) status_ = seen;
  }
  if (status_ == before) return std::nullopt;
  direction_ = 0;
  streak_ = 0;
  if (status_ == Health::kCritical) critical_since_ = now;
  return Change{before, status_};
}

bool CheckState::DeregisterDue(Clock::time_point now) const {
  return deregister_after_.count() > 0 && status_ == Health::kCritical &&
         now - critical_since_ >= deregister_after_;
}

}  // namespace muster
