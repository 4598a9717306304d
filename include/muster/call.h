// muster::Caller runs a caller's request against an instance picked by
// Discovery and, on a transport failure, retries on a different instance up to
// a budget. Instances that keep failing are ejected for a while (outlier
// ejection) and then tried again.
//
// Example:
//   muster::Caller caller(&discovery, {});
//   muster::ServiceQuery echo;
//   echo.service = "echo";
//   absl::Status s = caller.Call(echo, [&](const muster::Instance& in) {
//     return HttpGet(in.address, "/echo");  // Unavailable on connection errors
//   });
//
// Thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "muster/discovery.h"

namespace muster {

struct CallPolicy {
  int max_attempts = 3;  // the first try included; each retry uses another instance
  // Codes that count as a transport failure: retried elsewhere, and counted
  // against the instance for ejection. Others are returned at once.
  std::vector<absl::StatusCode> retry_on = {absl::StatusCode::kUnavailable,
                                            absl::StatusCode::kDeadlineExceeded};
  // Ejection: after this many consecutive failures an instance is skipped
  // for base_ejection * (times ejected so far, up to max_ejection / base).
  int consecutive_failures_to_eject = 3;
  std::chrono::milliseconds base_ejection = std::chrono::seconds(5);
  std::chrono::milliseconds max_ejection = std::chrono::seconds(60);
  // Never eject more than this share of a service's instances.
  double max_ejected_share = 0.5;
  // The time source for ejection, injectable for tests. Default (empty):
  // std::chrono::steady_clock::now.
  std::function<std::chrono::steady_clock::time_point()> now;
};

class Caller {
 public:
  // `discovery` must outlive the Caller.
  Caller(Discovery* discovery, CallPolicy policy);
  ~Caller();
  Caller(const Caller&) = delete;
  Caller& operator=(const Caller&) = delete;

  using Attempt = std::function<absl::Status(const Instance&)>;

  // Runs `attempt` on picked instances until one succeeds, a non-retryable
  // error comes back, or the attempts are spent (the last error is returned).
  absl::Status Call(const ServiceQuery& query, const Attempt& attempt,
                    const PickRequest& request = {});

  // Whether an instance (by id) is ejected right now.
  bool IsEjected(const ServiceQuery& query, const std::string& id) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace muster
