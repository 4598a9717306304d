// Figures of a watch fan-out run (see fanout.h).
#include "registry/fanout.h"

namespace muster::bench {

Figures FanoutFigures(FanoutResult& r, int changes_wanted) {
  Figures f;
  if (!r.error.empty() || r.changes < changes_wanted || r.ready < r.watchers) {
    f.note = "watchers ready " + std::to_string(r.ready) + "/" + std::to_string(r.watchers) +
             ", changes delivered " + std::to_string(r.changes) + "/" + std::to_string(changes_wanted) +
             (r.error.empty() ? "" : ": " + r.error);
    return f;
  }
  f.value = r.last.QuantileMs(0.5);
  f.extra = {{"p99_ms", r.last.QuantileMs(0.99)},
             {"max_ms", r.last.MaxMs()},
             {"first_p50_ms", r.first.QuantileMs(0.5)},
             {"write_p50_ms", r.write.QuantileMs(0.5)}};
  return f;
}

}  // namespace muster::bench
