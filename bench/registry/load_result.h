// LoadResult: what a closed-loop load run (HTTP or gRPC) counted, and the
// Figures a scenario reports from it.
#pragma once

#include <cstdint>
#include <string>

#include "registry/latency.h"
#include "registry/scenario.h"

namespace muster::bench {

struct LoadResult {
  uint64_t ok = 0;      // successful: HTTP 2xx, gRPC OK
  uint64_t failed = 0;  // other answers, connection and call errors
  double seconds = 0;   // from the first request to the last answer
  LatencyLog latency;   // of the successful ones
  std::string first_error;
  double rate() const { return seconds > 0 ? static_cast<double>(ok) / seconds : 0; }
};

// Figures of a closed-loop run: value = successful operations per second;
// extra p50_ms, p99_ms and, when any failed, errors (with the first in note).
Figures LoadFigures(LoadResult& r);

}  // namespace muster::bench
