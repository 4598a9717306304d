#include "catalog/self_preservation.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace muster {

bool SelfPreservation::Hold(size_t due, size_t live, std::chrono::nanoseconds longest_ttl) {
  const Clock::time_point now = clock_->Now();
  while (!expired_.empty() && now - expired_.front().first > options_.window) {
    expired_in_window_ -= expired_.front().second;
    expired_.pop_front();
  }
  const bool was = active_.load(std::memory_order_relaxed);
  if (due == 0) {
    // Nothing to decide. Held leases that have not come due again by now were
    // renewed: heartbeats are back.
    if (was && now >= recheck_at_) {
      active_.store(false, std::memory_order_relaxed);
      spdlog::info("self-preservation off: the held leases were renewed");
    }
    return false;
  }
  const size_t lapsing = expired_in_window_ + due;
  const size_t all = live + due + expired_in_window_;
  const bool hold = options_.threshold > 0 && all >= options_.min_leases &&
                    static_cast<double>(lapsing) > options_.threshold * static_cast<double>(all);
  if (hold != was) {
    active_.store(hold, std::memory_order_relaxed);
    if (hold) {
      spdlog::warn("self-preservation on: {} of {} leases would lapse within {} ms; "
                   "not expiring until heartbeats return",
                   lapsing, all, options_.window.count());
    } else {
      spdlog::info("self-preservation off: {} of {} leases lapsing", lapsing, all);
    }
  }
  if (hold) {
    recheck_at_ = std::max(recheck_at_, now + std::chrono::duration_cast<Clock::time_point::duration>(longest_ttl) +
                                            std::chrono::seconds(1));
    return true;
  }
  expired_.emplace_back(now, due);
  expired_in_window_ += due;
  return false;
}

}  // namespace muster
