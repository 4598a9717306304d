// Figures of the scale scenario (see scale.h).
#include "registry/scale.h"

namespace muster::bench {

Figures ScaleFigures(const ScaleResult& r) {
  Figures f;
  if (!r.error.empty() || r.instances <= 0) {
    f.note = r.error;
    return f;
  }
  constexpr double kMiB = 1024.0 * 1024.0;
  f.value = (static_cast<double>(r.rss_loaded) - static_cast<double>(r.rss_base)) / r.instances;
  f.extra = {{"rss_base_mb", static_cast<double>(r.rss_base) / kMiB},
             {"rss_loaded_mb", static_cast<double>(r.rss_loaded) / kMiB}};
  if (r.watchers > 0 && r.watchers_ready == r.watchers) {
    f.extra.emplace_back("watcher_bytes",
                         (static_cast<double>(r.rss_watchers) - static_cast<double>(r.rss_loaded)) / r.watchers);
  }
  f.extra.emplace_back("restart_ms", r.restart_ms);
  f.extra.emplace_back("register_s", r.register_seconds);
  return f;
}

}  // namespace muster::bench
