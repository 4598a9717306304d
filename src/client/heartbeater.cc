// muster::Heartbeater: one thread per Heartbeater that renews the instance's
// lease every ttl * fraction, registers it again after a NotFound, and backs
// off exponentially while the registry fails.
//
// Call deadlines. The lease is taken to end ttl after the start of the last
// call that renewed it (the registry renewed it later than that, so this end
// is never late). While it has not ended, a heartbeat or re-registration may
// take at most the time left on it (at least kMinCallTimeout, at most
// options.call.timeout): a call that hangs is given up when the lease ends,
// not a 5 s call timeout later, and a backend that retries within a call
// (musterd's, across its addresses) spreads its attempts over that time.
// Once the lease has ended there is nothing left to save, and the calls get
// options.call.timeout again: cutting them to the floor would keep a slow
// registry from ever registering the instance again.
//
// Who runs what:
//   - Start and Stop run on the caller's thread (serialized by lifecycle_mu):
//     Start makes the first registration itself and starts the thread; Stop
//     wakes it through the condition variable, joins it, then deregisters.
//   - The heartbeat thread (Loop) makes every later call to the registry.
//   - stats() may be called from any thread.
//
// Time (the schedule, the backoff and the lease's end) comes from
// options.clock, so a test drives it with a ManualClock; the calls' own
// timeouts are the registry's and stay in real time.
#include "muster/heartbeater.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "core/mutex.h"
#include "core/strings.h"

namespace muster {
namespace {

using std::chrono::milliseconds;

// The least time a call made while the lease is alive gets, however little of
// the lease is left.
constexpr milliseconds kMinCallTimeout{100};

}  // namespace

struct Heartbeater::Impl {
  Impl(Registry* r, Instance in, HeartbeaterOptions o)
      : registry(r),
        instance(std::move(in)),
        key(KeyOf(instance)),
        options(std::move(o)),
        clock(options.clock != nullptr ? options.clock : SteadyClock::Get()) {}

  // Constant after construction.
  Registry* const registry;
  const Instance instance;
  const InstanceKey key;
  const HeartbeaterOptions options;
  const Clock* const clock;

  // Serializes Start and Stop; guards the lifecycle flags and the thread.
  Mutex lifecycle_mu;
  bool started ABSL_GUARDED_BY(lifecycle_mu) = false;
  bool stopped ABSL_GUARDED_BY(lifecycle_mu) = false;
  std::thread thread ABSL_GUARDED_BY(lifecycle_mu);

  // Shared with the heartbeat thread.
  mutable Mutex mu;
  CondVar wake;
  bool stopping ABSL_GUARDED_BY(mu) = false;
  Stats stats ABSL_GUARDED_BY(mu);

  // How often the lease is renewed; zero when the instance has no lease.
  milliseconds Interval() const {
    if (instance.ttl_seconds == 0) return milliseconds(0);
    double fraction = options.fraction;
    if (!(fraction > 0 && fraction <= 1)) fraction = 1.0 / 3.0;
    auto ms = static_cast<int64_t>(instance.ttl_seconds * 1000.0 * fraction);
    return milliseconds(std::max<int64_t>(ms, 1));
  }

  // The options of a heartbeat or re-registration made now, when the lease
  // was last renewed by a call started at `renewed` (see the top).
  CallOptions CallNow(Clock::time_point renewed) const {
    CallOptions call = options.call;
    const auto left = std::chrono::ceil<milliseconds>(
        renewed + std::chrono::seconds(instance.ttl_seconds) - clock->Now());
    if (left.count() > 0) call.timeout = std::min(call.timeout, std::max(left, kMinCallTimeout));
    return call;
  }

  void Record(const absl::Status& status, bool registration) {
    MutexLock lock(mu);
    if (status.ok()) {
      ++(registration ? stats.registrations : stats.heartbeats);
    } else {
      ++stats.failures;
      stats.last_error = status;
    }
  }

  // Sleeps until `delay` has passed or Stop is called; false when stopping.
  bool Sleep(std::chrono::milliseconds delay) {
    MutexLock lock(mu);
    const Clock::time_point until = clock->Now() + delay;
    while (!stopping && clock->Now() < until) clock->WaitUntil(mu, wake, until);
    return !stopping;
  }

  // The heartbeat thread; `renewed`: when Start's registration was sent.
  void Loop(Clock::time_point renewed) {
    const auto interval = Interval();
    const auto retry_initial = std::max(options.retry_initial, milliseconds(1));
    const auto retry_max = std::max(options.retry_max, retry_initial);
    auto backoff = retry_initial;
    auto delay = interval;
    bool must_register = false;
    while (Sleep(delay)) {
      const Clock::time_point sent = clock->Now();
      const CallOptions call = CallNow(renewed);
      absl::Status status = must_register ? registry->Register(instance, call).status()
                                          : registry->UpdateService(key, call);
      Record(status, must_register);
      if (status.ok()) {
        renewed = sent;
        must_register = false;
        backoff = retry_initial;
        delay = interval;
      } else if (status.code() == absl::StatusCode::kNotFound && !must_register) {
        // The registry does not know the instance (restarted without it, the
        // lease lapsed, or someone deregistered it): register again at once.
        must_register = true;
        delay = milliseconds(0);
      } else {
        delay = backoff;
        backoff = std::min(backoff * 2, retry_max);
      }
    }
  }
};

Heartbeater::Heartbeater(Registry* registry, Instance instance, HeartbeaterOptions options)
    : impl_(std::make_unique<Impl>(registry, std::move(instance), std::move(options))) {}

Heartbeater::~Heartbeater() { Stop(); }

absl::Status Heartbeater::Start() {
  MutexLock lifecycle(impl_->lifecycle_mu);
  if (impl_->started || impl_->stopped) {
    return absl::FailedPreconditionError(StrCat("heartbeater of ", impl_->key.service, "/",
                                                impl_->key.id, " was already ",
                                                impl_->stopped ? "stopped" : "started"));
  }
  const Clock::time_point sent = impl_->clock->Now();
  absl::Status registered = impl_->registry->Register(impl_->instance, impl_->options.call).status();
  impl_->Record(registered, /*registration=*/true);
  if (!registered.ok()) return registered;
  impl_->started = true;
  if (impl_->Interval().count() > 0) {
    impl_->thread = std::thread([this, sent] { impl_->Loop(sent); });
  }
  return absl::OkStatus();
}

void Heartbeater::Stop() {
  MutexLock lifecycle(impl_->lifecycle_mu);
  if (impl_->stopped) return;
  impl_->stopped = true;  // a Start after this is refused, even if none came before
  if (!impl_->started) return;
  {
    MutexLock lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->wake.NotifyAll();
  if (impl_->thread.joinable()) impl_->thread.join();
  if (impl_->options.deregister_on_stop) {
    absl::Status s = impl_->registry->Deregister(impl_->key, impl_->options.call);
    // NotFound: already gone (lapsed or removed by someone else) — the goal.
    if (!s.ok() && s.code() != absl::StatusCode::kNotFound) {
      MutexLock lock(impl_->mu);
      ++impl_->stats.failures;
      impl_->stats.last_error = s;
    }
  }
}

Heartbeater::Stats Heartbeater::stats() const {
  MutexLock lock(impl_->mu);
  return impl_->stats;
}

}  // namespace muster
