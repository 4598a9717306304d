// What a watch fan-out run yields on either system: for each change, the time
// from just before the write was sent until the last watcher had the event.
#pragma once

#include <string>

#include "registry/latency.h"
#include "registry/scenario.h"

namespace muster::bench {

struct FanoutResult {
  int watchers = 0;       // asked for
  int ready = 0;          // streams open (created) before the first change
  int changes = 0;        // changes every ready watcher received
  LatencyLog last;        // per change: until the last watcher had it
  LatencyLog first;       // per change: until the first watcher had it
  LatencyLog write;       // per change: the write's own round trip
  std::string error;      // why it stopped early, if it did
};

// value: p50 of `last` in ms; extra p99_ms, max_ms (of `last`), first_p50_ms,
// write_p50_ms, watchers; not measured unless every change reached everyone.
Figures FanoutFigures(FanoutResult& r, int changes_wanted);

}  // namespace muster::bench
