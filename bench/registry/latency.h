// LatencyLog: the latencies of one load generator's requests, kept whole in a
// vector (a few million entries at most) and sorted once for percentiles.
// Not thread-safe: each io_context/completion-queue thread keeps its own and
// Merge()s them at the end.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

namespace muster::bench {

using Clock = std::chrono::steady_clock;

class LatencyLog {
 public:
  void Add(Clock::duration d) { ns_.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count()); }
  void AddMs(double ms) { ns_.push_back(static_cast<int64_t>(ms * 1e6)); }
  void Merge(const LatencyLog& other) { ns_.insert(ns_.end(), other.ns_.begin(), other.ns_.end()); }
  size_t count() const { return ns_.size(); }
  // The q-quantile (0..1) in milliseconds, nearest rank; 0 when empty.
  // Sorts on first use after an Add.
  double QuantileMs(double q);
  double MaxMs() { return QuantileMs(1.0); }

 private:
  std::vector<int64_t> ns_;
  bool sorted_ = false;
  size_t sorted_size_ = 0;
};

}  // namespace muster::bench
