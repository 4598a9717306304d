// The expiry scenario's result on either system: `instances` registered with
// a TTL of `ttl_seconds` and never renewed, watched by `watchers` watchers
// that count removals. Times are from the moment the lease should lapse.
#pragma once

#include <string>

#include "registry/latency.h"
#include "registry/scenario.h"

namespace muster::bench {

struct ExpiryResult {
  int instances = 0;
  int watchers = 0;
  int ttl_seconds = 0;
  int ready = 0;             // watchers open before the registrations
  int complete = 0;          // watchers that saw every removal
  double register_seconds = 0;  // how long the registrations took
  // From the last registration's answer + TTL (when the last lease is due)
  // until the last watcher had its last removal: the lag behind the TTL.
  double last_after_ttl_ms = 0;
  // From the first registration's start + TTL (the earliest a lease can be
  // due) until the first removal reached any watcher.
  double first_after_ttl_ms = 0;
  std::string error;
};

// value: last_after_ttl_ms; extras first_after_ttl_ms, register_s. Not
// measured unless every watcher saw every removal.
Figures ExpiryFigures(const ExpiryResult& r);

}  // namespace muster::bench
