// musterd's active health checks: for every registered instance with http,
// tcp, grpc or script checks, runs each check on its interval through a probe
// (probe.h), damps flapping with rise/fall (check_state.h), and writes each
// change of state to the catalog, which recomputes the instance's health and
// tells watchers (a "health" event). A check critical for its
// deregister_critical_after deregisters the instance.
//
// Nothing blocks a thread: a check is a timer and an asynchronous probe on
// the I/O threads, so ten thousand checks cost ten thousand timers, not
// threads. New checks run soon after registration (within a second); checks
// that already have a state (after a restart) start at a random point of
// their interval, so they do not all fire together.
//
// The checker follows the catalog through its change listener, so it sees
// every registration, update and removal, whichever way it came.
//
// Thread-safe. Held by shared_ptr: timers, probes and catalog callbacks hold
// only weak references, so one that fires late finds the checker gone and
// does nothing. Call Stop() before the catalog or the io_context goes.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "catalog/catalog.h"
#include "core/mutex.h"
#include "server/health/check_state.h"
#include "server/health/probe.h"

namespace muster {

struct HealthCheckerOptions {
  ProbeEnvironment env;
  // Time for rise/fall and deregister_critical_after (timers use real time).
  const Clock* clock = SteadyClock::Get();
  // A check that never ran runs within this of its registration.
  std::chrono::milliseconds first_run_within{1000};
  // Told of every transition, critical deregistration and lease expiry, as
  // a JSON event (the webhook body; docs/api.md "Webhooks"); null: nobody.
  // Called without the checker's locks held (an expiry from inside the
  // catalog's change listener); must be quick.
  std::function<void(std::string json)> notify;
};

class HealthChecker : public std::enable_shared_from_this<HealthChecker> {
 public:
  static std::shared_ptr<HealthChecker> Create(Catalog& catalog, HealthCheckerOptions options);
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // Starts checking every instance now registered and every one to come.
  void Start() ABSL_LOCKS_EXCLUDED(follow_mu_, mu_);
  // Stops every check (probes in flight are cancelled; their results are
  // dropped) for good. Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(follow_mu_, mu_);
  // The leadership listener (Catalog::StandForLeadership): checks run only
  // while this node leads, so each instance is checked by one node. Gaining
  // leadership starts the checks (each at a random point of its interval),
  // losing it stops them; the change is made on the executor, in the order
  // the calls came. Its writes are fenced by the leader's term as well
  // (ClusterStore::SetCheckState). Any thread.
  void SetLeading(bool leading) ABSL_LOCKS_EXCLUDED(mu_);
  bool running() const ABSL_LOCKS_EXCLUDED(mu_);

  // Takes the instance's report on its reported check `check_id` (a ttl
  // check with a ttl): the check takes `status` and `output` at once (no
  // rise/fall), and lapses to critical ("TTL expired") a ttl after the last
  // report. The catalog is written only when the status or the output
  // changes; a report that repeats the last only restarts the ttl.
  // Unavailable when this node does not run the checks (cluster mode: only
  // the leader does); NotFound when it follows no such check (yet: a
  // registration this node has not applied); FailedPrecondition when the
  // check is one musterd runs. Any thread.
  // `done` runs once the report is in the catalog (at once when it already
  // was), on any thread, with the outcome.
  using ReportDone = absl::AnyInvocable<void(absl::Status) &&>;
  void Report(const InstanceKey& key, std::string_view check_id, Health status,
              std::string output, ReportDone done) ABSL_LOCKS_EXCLUDED(mu_);

  // What the checker knows of one check right now.
  struct LiveCheck {
    std::string id;
    Health status = Health::kCritical;     // after rise/fall
    std::optional<ProbeResult> last;       // the latest result, if any
    std::chrono::system_clock::time_point last_at{};  // when it came
    uint32_t streak = 0;                   // results toward a change not yet made
  };
  // The live state of the instance's active checks; empty when this checker
  // does not run them (unknown instance, no active checks, stopped).
  std::vector<LiveCheck> Live(const InstanceKey& key) const ABSL_LOCKS_EXCLUDED(mu_);
  // Active checks running now.
  size_t check_count() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  HealthChecker(Catalog& catalog, HealthCheckerOptions options);

  struct Runner;
  using Runners = std::vector<std::shared_ptr<Runner>>;
  struct Entry {
    std::shared_ptr<const Instance> instance;  // as last seen in the catalog
    std::vector<std::shared_ptr<Runner>> runners;
  };

  void OnChanges(const std::vector<Event>& events, bool reset) ABSL_LOCKS_EXCLUDED(mu_);
  // Brings the checks of one instance in line with `instance` (null: gone):
  // adds the runners to start to `started` and those ended to `ended`.
  void ReconcileLocked(const InstanceKey& key, std::shared_ptr<const Instance> instance,
                       Runners& started, Runners& ended) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Schedule(const std::shared_ptr<Runner>& runner, std::chrono::milliseconds delay)
      ABSL_LOCKS_EXCLUDED(mu_);
  void RunOnce(const std::shared_ptr<Runner>& runner) ABSL_LOCKS_EXCLUDED(mu_);
  // `done` (a report's): answered once the result is in the catalog.
  void OnResult(const std::shared_ptr<Runner>& runner, ProbeResult result,
                ReportDone done = nullptr) ABSL_LOCKS_EXCLUDED(mu_);
  void WriteState(const std::shared_ptr<Runner>& runner, Check check, Health from)
      ABSL_LOCKS_EXCLUDED(mu_);
  void Recorded(const std::shared_ptr<Runner>& runner, Health from, Health to,
                const std::string& check_id, absl::StatusOr<Catalog::WriteResult> written)
      ABSL_LOCKS_EXCLUDED(mu_);
  void DeregisterCritical(const std::shared_ptr<Runner>& runner) ABSL_LOCKS_EXCLUDED(mu_);
  void Deregistered(const std::shared_ptr<Runner>& runner, const std::string& reason,
                    absl::StatusOr<Catalog::WriteResult> done) ABSL_LOCKS_EXCLUDED(mu_);
  std::chrono::milliseconds RandomBelow(std::chrono::milliseconds bound)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Both run under follow_mu_, so that they do not interleave.
  void StartChecks() ABSL_EXCLUSIVE_LOCKS_REQUIRED(follow_mu_) ABSL_LOCKS_EXCLUDED(mu_);
  void StopChecks() ABSL_EXCLUSIVE_LOCKS_REQUIRED(follow_mu_) ABSL_LOCKS_EXCLUDED(mu_);
  // Starts or stops the checks as the last SetLeading asked.
  void FollowLeadership() ABSL_LOCKS_EXCLUDED(follow_mu_, mu_);

  Catalog& catalog_;
  const HealthCheckerOptions options_;

  std::atomic<bool> listening_{false};  // the catalog's change listener is ours
  mutable Mutex mu_;
  bool running_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;  // Stop() was called: nothing starts again
  // SetLeading's last word; FollowLeadership acts on it.
  bool leading_ ABSL_GUARDED_BY(mu_) = false;
  // Held while FollowLeadership starts or stops the checks, so that two of
  // its runs on different I/O threads do not interleave.
  Mutex follow_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  absl::flat_hash_map<InstanceKey, Entry> entries_ ABSL_GUARDED_BY(mu_);
  size_t check_count_ ABSL_GUARDED_BY(mu_) = 0;
  std::minstd_rand random_ ABSL_GUARDED_BY(mu_){std::random_device{}()};
};

}  // namespace muster
