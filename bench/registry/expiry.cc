// Figures of the expiry scenario (see expiry.h).
#include "registry/expiry.h"

namespace muster::bench {

Figures ExpiryFigures(const ExpiryResult& r) {
  Figures f;
  if (!r.error.empty() || r.complete < r.watchers) {
    f.note = "watchers ready " + std::to_string(r.ready) + "/" + std::to_string(r.watchers) +
             ", saw every removal " + std::to_string(r.complete) + "/" + std::to_string(r.watchers) +
             (r.error.empty() ? "" : ": " + r.error);
    return f;
  }
  f.value = r.last_after_ttl_ms;
  f.extra = {{"first_after_ttl_ms", r.first_after_ttl_ms}, {"register_s", r.register_seconds}};
  return f;
}

}  // namespace muster::bench
