// The expiry scenario's result on either system: `instances` registered with
// a TTL of `ttl_seconds` and never renewed, watched by `watchers` watchers
// that count removals. Times are from the moment the lease should lapse.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
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

// The part of an expiry run that is the same on both systems: counting what
// the watchers report (from their threads) and the timing around the
// registrations.
class ExpiryRun {
 public:
  explicit ExpiryRun(const Params& p);

  // The watchers' reports: opened, failed to open, saw its nth removal (from 0).
  void Opened() { ++ready_; }
  void Failed() { ++failed_; }
  void Removal(int nth);

  // Waits (up to 30 s) until every watcher opened or failed; if all opened,
  // runs `register_all` (which returns an error, or "" when every
  // registration succeeded), waits until every watcher saw every removal
  // (up to the TTL + 60 s) and times it. `not_open` is the error when some
  // watcher did not open.
  ExpiryResult Run(const std::function<std::string()>& register_all, const std::string& not_open);

 private:
  static int64_t NowNs();

  const int instances_;
  const int watchers_;
  const int ttl_seconds_;
  std::atomic<int> ready_{0};
  std::atomic<int> failed_{0};
  std::atomic<int> complete_{0};
  std::atomic<int64_t> first_ns_{0};
  std::atomic<int64_t> last_ns_{0};
};

}  // namespace muster::bench
