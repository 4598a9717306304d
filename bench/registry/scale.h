// The scale scenario's result on either system: resident memory with many
// instances registered and with many idle watchers, and the time a restart
// takes until the server serves its instances again.
#pragma once

#include <cstdint>
#include <string>

#include "registry/scenario.h"

namespace muster::bench {

struct ScaleResult {
  int instances = 0;
  int watchers = 0;
  uint64_t rss_base = 0;      // bytes, fresh server
  uint64_t rss_loaded = 0;    // with the instances registered
  uint64_t rss_watchers = 0;  // and the idle watchers open
  int watchers_ready = 0;
  double register_seconds = 0;
  // From the restart (after a clean stop) until a list of one service
  // answered in full.
  double restart_ms = 0;
  std::string error;
};

// value: (rss_loaded - rss_base) / instances in bytes; extras rss_base_mb,
// rss_loaded_mb, watcher_bytes ((rss_watchers - rss_loaded) / watchers),
// restart_ms, register_s. Not measured after an error.
Figures ScaleFigures(const ScaleResult& r);

}  // namespace muster::bench
