// LatencyLog percentiles (see latency.h).
#include "registry/latency.h"

#include <algorithm>
#include <cmath>

namespace muster::bench {

double LatencyLog::QuantileMs(double q) {
  if (ns_.empty()) return 0;
  if (!sorted_ || sorted_size_ != ns_.size()) {
    std::sort(ns_.begin(), ns_.end());
    sorted_ = true;
    sorted_size_ = ns_.size();
  }
  q = std::clamp(q, 0.0, 1.0);
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(ns_.size())));
  if (rank > 0) --rank;
  return static_cast<double>(ns_[std::min(rank, ns_.size() - 1)]) / 1e6;
}

}  // namespace muster::bench
