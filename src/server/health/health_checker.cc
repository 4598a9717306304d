#include "server/health/health_checker.h"

#include <algorithm>
#include <utility>
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#include "core/duration.h"
#include "core/json_codec.h"
#include "core/strings.h"

namespace muster {
namespace json = boost::json;

namespace {

// A reported check takes each report as it comes: no rise/fall damping.
Check Undamped(Check check) {
  if (check.IsReported()) check.rise = check.fall = 1;
  return check;
}

}  // namespace

// One active or reported check of one instance. Everything but the
// constants is guarded by the checker's mu_.
struct HealthChecker::Runner {
  Runner(InstanceKey k, Check c, std::shared_ptr<Probe> p, std::string error,
         boost::asio::any_io_executor executor, Clock::time_point now)
      : key(std::move(k)),
        check(std::move(c)),
        probe(std::move(p)),
        probe_error(std::move(error)),
        state(Undamped(check), now),
        recorded(check.status),
        recorded_ran(!check.output.empty()),
        recorded_output(check.output),
        timer(std::move(executor)) {}

  const InstanceKey key;
  const Check check;                   // the spec, and the state recorded when it started
  const std::shared_ptr<Probe> probe;  // null when it could not be made (or reported):
  const std::string probe_error;       // then every run reports this
  CheckState state;
  Health recorded;  // the state the catalog holds for this check
  bool recorded_ran;  // the catalog holds a result (a non-empty output)
  std::string recorded_output;  // reported checks: the output the catalog holds
  boost::asio::steady_timer timer;
  std::chrono::system_clock::time_point last_at{};
  bool writing = false;        // a state write is in flight
  // Reports answered once the write in flight (or the one after it) lands.
  std::vector<ReportDone> waiting;
  bool deregistering = false;  // the critical deregistration was asked for
  bool stopped = false;
};

namespace {

json::object EventBase(std::string_view type, const Instance& in) {
  return json::object{{"type", type},       {"time", FormatTimestamp(std::chrono::system_clock::now())},
                      {"namespace", in.ns}, {"service", in.service},
                      {"id", in.id},        {"address", in.address}};
}

}  // namespace

std::shared_ptr<HealthChecker> HealthChecker::Create(Catalog& catalog,
                                                     HealthCheckerOptions options) {
  return std::shared_ptr<HealthChecker>(new HealthChecker(catalog, std::move(options)));
}

HealthChecker::HealthChecker(Catalog& catalog, HealthCheckerOptions options)
    : catalog_(catalog), options_(std::move(options)) {}

HealthChecker::~HealthChecker() { Stop(); }

void HealthChecker::Start() {
  MutexLock follow(follow_mu_);
  StartChecks();
}

void HealthChecker::Stop() {
  MutexLock follow(follow_mu_);
  {
    MutexLock lock(mu_);
    stopped_ = true;
  }
  StopChecks();
}

bool HealthChecker::running() const {
  MutexLock lock(mu_);
  return running_;
}

void HealthChecker::SetLeading(bool leading) {
  {
    MutexLock lock(mu_);
    if (stopped_) return;
    leading_ = leading;
  }
  // Not here: the caller is the election's thread, which must not wait for
  // a scan of every instance.
  boost::asio::post(options_.env.executor, [weak = weak_from_this()] {
    if (auto self = weak.lock()) self->FollowLeadership();
  });
}

void HealthChecker::FollowLeadership() {
  MutexLock follow(follow_mu_);
  bool lead;
  {
    MutexLock lock(mu_);
    if (stopped_) return;
    lead = leading_;
  }
  if (lead == running()) return;
  spdlog::info("health: {} the checks of the registry", lead ? "running" : "no longer running");
  if (lead) {
    StartChecks();
  } else {
    StopChecks();
  }
}

void HealthChecker::StartChecks() {
  {
    MutexLock lock(mu_);
    if (running_ || stopped_) return;
    running_ = true;
  }
  // Listen first, then read everything under mu_: a change that lands in
  // between waits for mu_ and is applied after the scan, so none is lost.
  listening_ = true;
  catalog_.SetChangeListener(
      [weak = weak_from_this()](const std::vector<Event>& events, bool reset) {
        if (auto self = weak.lock()) self->OnChanges(events, reset);
      });
  OnChanges({}, /*reset=*/true);
}

void HealthChecker::StopChecks() {
  // Waits for a listener call in progress. Never runs inside one: the
  // listener only reconciles.
  if (listening_.exchange(false)) catalog_.SetChangeListener(nullptr);
  Runners ended;
  {
    MutexLock lock(mu_);
    running_ = false;
    for (auto& [key, entry] : entries_) {
      for (auto& r : entry.runners) {
        r->stopped = true;
        r->timer.cancel();
        ended.push_back(std::move(r));
      }
    }
    entries_.clear();
    check_count_ = 0;
  }
  for (auto& r : ended) {
    if (r->probe) r->probe->Cancel();
  }
}

void HealthChecker::OnChanges(const std::vector<Event>& events, bool reset) {
  Runners started;
  Runners ended;
  std::vector<std::chrono::milliseconds> delays;
  {
    MutexLock lock(mu_);
    if (!running_) return;
    if (reset) {
      // Only instances with an active check can have runners; for the rest
      // (most, usually) reconciling is a no-op, and a restart with a million
      // of them should not wait for a million of those. An entry whose
      // instance now has none is ended as if it were gone, which is the same.
      absl::flat_hash_map<InstanceKey, std::shared_ptr<const Instance>> now;
      for (auto& in : catalog_.AllInstances()) {
        const bool active = std::any_of(in->checks.begin(), in->checks.end(),
                                        [](const Check& c) { return !c.IsLease(); });
        if (active) now.emplace(KeyOf(*in), std::move(in));
      }
      std::vector<InstanceKey> gone;
      for (const auto& [key, entry] : entries_) {
        if (!now.contains(key)) gone.push_back(key);
      }
      for (const InstanceKey& key : gone) ReconcileLocked(key, nullptr, started, ended);
      for (auto& [key, in] : now) ReconcileLocked(key, std::move(in), started, ended);
    }
    for (const Event& e : events) {
      const bool gone = e.type == ChangeType::kDeregistered || e.type == ChangeType::kExpired;
      ReconcileLocked(KeyOf(*e.instance), gone ? nullptr : e.instance, started, ended);
    }
    // A check that never ran goes soon; one with a state (after a restart or
    // a re-registration) anywhere in its interval, so they spread out. A
    // reported check lapses a whole ttl after it starts being followed here.
    for (const auto& r : started) {
      const bool ran = !r->check.output.empty();
      if (r->check.IsReported()) {
        delays.push_back(r->check.ttl);
        continue;
      }
      delays.push_back(RandomBelow(ran ? r->check.interval
                                       : std::min(r->check.interval, options_.first_run_within)));
    }
  }
  for (auto& r : ended) {
    if (r->probe) r->probe->Cancel();
  }
  for (size_t i = 0; i < started.size(); ++i) Schedule(started[i], delays[i]);
  // A lapsed lease is the TTL check's transition: webhooks hear of it too.
  if (options_.notify) {
    for (const Event& e : events) {
      if (e.type != ChangeType::kExpired) continue;
      json::object event = EventBase("expired", *e.instance);
      event["revision"] = e.revision;
      event["ttl_seconds"] = e.instance->ttl_seconds;
      options_.notify(json::serialize(event));
    }
  }
}

void HealthChecker::ReconcileLocked(const InstanceKey& key,
                                    std::shared_ptr<const Instance> instance, Runners& started,
                                    Runners& ended) {
  auto it = entries_.find(key);
  if (it != entries_.end() && instance != nullptr &&
      instance->modify_revision < it->second.instance->modify_revision) {
    return;  // older than the state already applied (a scan racing a change)
  }
  Runners kept;
  if (it != entries_.end()) {
    for (auto& r : it->second.runners) {
      const Check* now = instance != nullptr ? instance->FindCheck(r->check.id) : nullptr;
      if (now != nullptr && now->SameSpec(r->check)) {
        r->recorded = now->status;
        r->recorded_ran = !now->output.empty();
        r->recorded_output = now->output;
        kept.push_back(std::move(r));
      } else {
        r->stopped = true;
        r->timer.cancel();
        --check_count_;
        ended.push_back(std::move(r));
      }
    }
  }
  if (instance != nullptr) {
    for (const Check& c : instance->checks) {
      if (c.IsLease() || instance->FindCheck(c.id) != &c) continue;
      const bool running =
          std::any_of(kept.begin(), kept.end(), [&](const auto& r) { return r->check.id == c.id; });
      if (running) continue;
      std::shared_ptr<Probe> probe;
      std::string error;
      if (!c.IsReported()) {
        auto made = MakeProbe(c, *instance, options_.env);
        if (made.ok()) probe = *std::move(made);
        if (!made.ok()) error = std::string(MessageOf(made.status()));
      }
      auto runner = std::make_shared<Runner>(key, c, std::move(probe), std::move(error),
                                             options_.env.executor, options_.clock->Now());
      kept.push_back(runner);
      started.push_back(std::move(runner));
      ++check_count_;
    }
  }
  if (kept.empty()) {
    if (it != entries_.end()) entries_.erase(it);
    return;
  }
  Entry& entry = entries_[key];
  entry.instance = std::move(instance);
  entry.runners = std::move(kept);
}

void HealthChecker::Schedule(const std::shared_ptr<Runner>& runner,
                             std::chrono::milliseconds delay) {
  MutexLock lock(mu_);
  if (runner->stopped) return;
  runner->timer.expires_after(delay);
  runner->timer.async_wait([self = weak_from_this(),
                            weak = std::weak_ptr<Runner>(runner)](boost::system::error_code ec) {
    auto checker = self.lock();
    auto r = weak.lock();
    if (ec || checker == nullptr || r == nullptr) return;
    checker->RunOnce(r);
  });
}

void HealthChecker::RunOnce(const std::shared_ptr<Runner>& runner) {
  {
    MutexLock lock(mu_);
    if (runner->stopped) return;
  }
  if (runner->check.IsReported()) {
    // No report within the ttl (Consul's words for it).
    OnResult(runner, ProbeResult{Health::kCritical, "TTL expired"});
    return;
  }
  if (runner->probe == nullptr) {
    OnResult(runner, ProbeResult{Health::kCritical, runner->probe_error});
    return;
  }
  // The callback holds only a weak reference: a check removed meanwhile is
  // not kept alive by its probe, and its result is dropped.
  runner->probe->Run(
      runner->check.timeout,
      [self = weak_from_this(), weak = std::weak_ptr<Runner>(runner)](ProbeResult result) {
        auto checker = self.lock();
        auto r = weak.lock();
        if (checker != nullptr && r != nullptr) checker->OnResult(r, std::move(result));
      });
}

void HealthChecker::OnResult(const std::shared_ptr<Runner>& runner, ProbeResult result,
                             ReportDone done) {
  std::optional<Check> write;
  Health from = Health::kCritical;
  bool deregister = false;
  bool stopped = false;
  {
    MutexLock lock(mu_);
    if (runner->stopped) {
      stopped = true;
    } else {
      result.output = BoundedOutput(std::move(result.output),
                                    result.status == Health::kPassing ? "ok" : "failed");
      const auto now = options_.clock->Now();
      runner->last_at = std::chrono::system_clock::now();
      auto change = runner->state.Observe(std::move(result), now);
      // Write when the state moved, the first result (even one that leaves
      // the state as it was, so the catalog shows an output), and whenever the
      // catalog's copy differs (an earlier write failed): the catalog converges.
      // A reported check's output is the instance's word: a new one is written
      // too (a probe's output changes every run, and is kept only with a change).
      const bool new_output =
          runner->check.IsReported() && runner->state.last()->output != runner->recorded_output;
      if ((change || runner->state.status() != runner->recorded || !runner->recorded_ran ||
           new_output) &&
          !runner->writing) {
        Check c = runner->check;
        c.status = runner->state.status();
        c.output = runner->state.last()->output;
        from = change ? change->from : runner->recorded;
        runner->writing = true;
        write = std::move(c);
      }
      if (!runner->deregistering && runner->state.DeregisterDue(now)) {
        runner->deregistering = true;
        deregister = true;
      }
      if (done && runner->writing) runner->waiting.push_back(std::exchange(done, nullptr));
    }
  }
  if (stopped) {
    if (done) std::move(done)(absl::UnavailableError("the check is no longer followed here"));
    return;
  }
  if (done) std::move(done)(absl::OkStatus());  // nothing to write: the catalog has it
  if (write) WriteState(runner, *std::move(write), from);
  if (deregister) DeregisterCritical(runner);
  Schedule(runner, runner->check.IsReported() ? runner->check.ttl : runner->check.interval);
}

void HealthChecker::Report(const InstanceKey& key, std::string_view check_id, Health status,
                           std::string output, ReportDone done) {
  std::shared_ptr<Runner> runner;
  bool running = false;
  {
    MutexLock lock(mu_);
    running = running_;
    auto it = entries_.find(key);
    if (it != entries_.end()) {
      for (const auto& r : it->second.runners) {
        if (r->check.id == check_id) runner = r;
      }
    }
  }
  if (!running) {
    std::move(done)(absl::UnavailableError("this node does not run the registry's checks"));
    return;
  }
  if (runner == nullptr) {
    std::move(done)(absl::NotFoundError(
        StrCat("check \"", check_id, "\" of ", key.service, "/", key.id, " is not followed here")));
    return;
  }
  if (!runner->check.IsReported()) {
    std::move(done)(absl::FailedPreconditionError(StrCat(
        "check \"", check_id, "\" is run by musterd; only a ttl check with a ttl takes reports")));
    return;
  }
  output = BoundedOutput(std::move(output), StrCat("reported ", ToString(status)));
  OnResult(runner, ProbeResult{status, std::move(output)}, std::move(done));
}

void HealthChecker::WriteState(const std::shared_ptr<Runner>& runner, Check check, Health from) {
  const Health to = check.status;
  const std::string check_id = check.id;
  catalog_.SetCheckState(runner->key, std::move(check),
                         [self = weak_from_this(), runner, from, to,
                          check_id](absl::StatusOr<Catalog::WriteResult> written) {
                           auto checker = self.lock();
                           if (checker == nullptr) return;
                           checker->Recorded(runner, from, to, check_id, std::move(written));
                         });
}

void HealthChecker::Recorded(const std::shared_ptr<Runner>& runner, Health from, Health to,
                             const std::string& check_id,
                             absl::StatusOr<Catalog::WriteResult> written) {
  std::optional<Check> again;
  Health again_from = to;
  std::vector<ReportDone> answered;
  {
    MutexLock lock(mu_);
    runner->writing = false;
    if (written.ok()) {
      runner->recorded = to;
      runner->recorded_ran = true;
      if (const Check* c = written->instance->FindCheck(check_id)) runner->recorded_output = c->output;
      // Results that came while the write was in flight and moved the state
      // on (a report right after another) are written now, not at the next
      // run, which for a reported check may be its lapse.
      const auto& last = runner->state.last();
      if (!runner->stopped && last &&
          (runner->state.status() != to ||
           (runner->check.IsReported() && last->output != runner->recorded_output))) {
        Check c = runner->check;
        c.status = runner->state.status();
        c.output = last->output;
        runner->writing = true;
        again = std::move(c);
      }
    }
    if (!again) answered.swap(runner->waiting);
  }
  if (again) WriteState(runner, *std::move(again), again_from);
  for (ReportDone& d : answered) {
    std::move(d)(written.ok() ? absl::OkStatus() : written.status());
  }
  if (!written.ok()) {
    if (!absl::IsNotFound(written.status())) {
      spdlog::warn("health: cannot record check {} of {}/{}: {}", check_id, runner->key.service,
                   runner->key.id, MessageOf(written.status()));
    }
    return;
  }
  if (from == to) return;
  const Instance& in = *written->instance;
  spdlog::info("health: {}/{} check {} {} -> {}", in.service, in.id, check_id, ToString(from),
               ToString(to));
  if (!options_.notify) return;
  json::object event = EventBase("health", in);
  event["revision"] = written->revision;
  event["check"] = check_id;
  event["from"] = ToString(from);
  event["to"] = ToString(to);
  event["health"] = ToString(in.health);
  if (const Check* c = in.FindCheck(check_id)) {
    event["check_type"] = ToString(c->type);
    event["output"] = c->output;
  }
  options_.notify(json::serialize(event));
}

void HealthChecker::DeregisterCritical(const std::shared_ptr<Runner>& runner) {
  const std::string reason = StrCat("check ", runner->check.id, " critical for ",
                                    FormatDuration(runner->check.deregister_critical_after));
  catalog_.Deregister(runner->key, [self = weak_from_this(), runner,
                                    reason](absl::StatusOr<Catalog::WriteResult> done) {
    auto checker = self.lock();
    if (checker == nullptr) return;
    checker->Deregistered(runner, reason, std::move(done));
  });
}

void HealthChecker::Deregistered(const std::shared_ptr<Runner>& runner, const std::string& reason,
                                 absl::StatusOr<Catalog::WriteResult> done) {
  if (!done.ok()) {
    if (!absl::IsNotFound(done.status())) {
      spdlog::warn("health: cannot deregister {}/{} ({}): {}", runner->key.service, runner->key.id,
                   reason, MessageOf(done.status()));
      MutexLock lock(mu_);
      runner->deregistering = false;  // try again after the next result
    }
    return;
  }
  spdlog::info("health: deregistered {}/{}: {}", runner->key.service, runner->key.id, reason);
  if (!options_.notify) return;
  json::object event = EventBase("deregistered", *done->instance);
  event["revision"] = done->revision;
  event["reason"] = reason;
  event["check"] = runner->check.id;
  options_.notify(json::serialize(event));
}

std::vector<HealthChecker::LiveCheck> HealthChecker::Live(const InstanceKey& key) const {
  std::vector<LiveCheck> out;
  MutexLock lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return out;
  for (const auto& r : it->second.runners) {
    out.push_back(
        LiveCheck{r->check.id, r->state.status(), r->state.last(), r->last_at, r->state.streak()});
  }
  return out;
}

size_t HealthChecker::check_count() const {
  MutexLock lock(mu_);
  return check_count_;
}

std::chrono::milliseconds HealthChecker::RandomBelow(std::chrono::milliseconds bound) {
  if (bound.count() <= 0) return std::chrono::milliseconds(0);
  std::uniform_int_distribution<int64_t> pick(0, bound.count() - 1);
  return std::chrono::milliseconds(pick(random_));
}

}  // namespace muster
