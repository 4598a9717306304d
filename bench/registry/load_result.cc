// Figures of a closed-loop load run (see load_result.h).
#include "registry/load_result.h"

namespace muster::bench {

Figures LoadFigures(LoadResult& r) {
  Figures f;
  f.value = r.rate();
  f.extra = {{"p50_ms", r.latency.QuantileMs(0.5)}, {"p99_ms", r.latency.QuantileMs(0.99)}};
  if (r.failed > 0) {
    f.extra.emplace_back("errors", static_cast<double>(r.failed));
    f.note = "errors: " + std::to_string(r.failed) + ", first: " + r.first_error;
  }
  return f;
}

}  // namespace muster::bench
