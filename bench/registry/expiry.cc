// Figures of the expiry scenario (see expiry.h).
#include "registry/expiry.h"

#include <chrono>
#include <thread>

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

ExpiryRun::ExpiryRun(const Params& p)
    : instances_(p.expiry_instances), watchers_(p.expiry_watchers), ttl_seconds_(p.expiry_ttl_seconds) {}

int64_t ExpiryRun::NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void ExpiryRun::Removal(int nth) {
  const int64_t now = NowNs();
  if (nth == 0) {
    int64_t zero = 0;
    first_ns_.compare_exchange_strong(zero, now);
  }
  if (nth == instances_ - 1) {
    last_ns_ = now;
    ++complete_;
  }
}

ExpiryResult ExpiryRun::Run(const std::function<std::string()>& register_all,
                            const std::string& not_open) {
  ExpiryResult r;
  r.instances = instances_;
  r.watchers = watchers_;
  r.ttl_seconds = ttl_seconds_;
  const auto open_deadline = Clock::now() + std::chrono::seconds(30);
  while (ready_ + failed_ < watchers_ && Clock::now() < open_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  r.ready = ready_;
  if (r.ready != watchers_) {
    r.error = not_open;
    return r;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const int64_t begin = NowNs();
  r.error = register_all();
  const int64_t registered = NowNs();
  r.register_seconds = static_cast<double>(registered - begin) / 1e9;
  const int64_t ttl_ns = int64_t{ttl_seconds_} * 1000000000;
  const auto deadline = Clock::now() + std::chrono::seconds(ttl_seconds_ + 60);
  while (r.error.empty() && complete_ < watchers_ && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  r.complete = complete_;
  r.last_after_ttl_ms = static_cast<double>(last_ns_ - (registered + ttl_ns)) / 1e6;
  r.first_after_ttl_ms = static_cast<double>(first_ns_ - (begin + ttl_ns)) / 1e6;
  return r;
}

}  // namespace muster::bench
