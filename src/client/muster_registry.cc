// NewMusterRegistry: a Registry that talks to musterd over its HTTP API
// (docs/api.md).
//
// Calls. Every call of this API is idempotent (a register of the same
// instance changes nothing, a heartbeat only renews), so each is retried on
// a transport error (Unavailable, DeadlineExceeded) or an answer that asks to
// try again (503; in cluster mode also 504, etcd did not answer in time, and
// 409, a concurrent change got in the way), up to
// max_attempts in all and within the call's overall timeout, across the
// addresses in turn: attempt k goes to address (preferred + k) mod n, where
// `preferred` is the address that answered last (so once a node is down the
// calls stay on the one that works). After every address has been tried once
// more, the next attempt waits an exponential backoff with jitter. Each
// attempt gets the remaining time divided by the attempts left (so a hung node
// cannot eat the whole budget), the last one all of it. Any other HTTP answer
// is final: 404 is NotFound and so on (ErrorOf).
// A Deregister whose earlier attempt failed in transit and whose retry hears
// 404 reports NotFound — the instance is not registered, whoever removed it;
// callers that only want it gone treat NotFound as done.
//
// Connections. Each address keeps up to max_idle_connections idle keep-alive
// HttpClients; a call borrows one (or opens a new one) and gives it back when
// the exchange went well.
//
// Subscriptions. One thread per subscription lists the service (a snapshot at
// revision R), then follows GET /api/v1/watch?service=S&from=R+1 (SSE), reading
// with short timeouts so that Unsubscribe and Close are noticed within
// ~200 ms. When the stream ends or breaks it delivers one update with status
// Unavailable, backs off and opens the stream again, on any address, from the
// last revision seen + 1; once a stream is open again it delivers an OK update
// with no changes ("reachable again, nothing was missed"). A stream on which
// nothing arrives for options.stream_idle_timeout (musterd sends a keep-alive comment
// on quiet streams) is taken for a dead connection that no error will ever
// end: it is dropped and opened again, and an outage is reported only if that
// fails. A 410 or an `event: compacted` (the history moved past the last
// revision seen) lists again and delivers a fresh snapshot. The version of a
// query is filtered on the client (client::SubscriptionView).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/json.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/wire/http_client.h"
#include "client/subscription_view.h"
#include "core/json_codec.h"
#include "core/wire/answers.h"
#include "core/wire/paths.h"
#include "core/limits.h"
#include "client/service_query.h"
#include "core/mutex.h"
#include "core/strings.h"
#include "core/validation.h"
#include "muster/registry.h"

namespace muster {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How long one read of a watch stream waits before looking at the stop flag.
constexpr milliseconds kStreamPoll{200};
// Bounds on the requests a subscription makes itself.
constexpr milliseconds kSubscriptionListTimeout{5000};
constexpr milliseconds kWatchOpenTimeout{2000};
// Shortest time an attempt gets when later attempts are left.
constexpr milliseconds kMinAttemptTimeout{100};
// A stream that stayed open this long counts as healthy: the backoff starts over.
constexpr milliseconds kStableStream{1000};
// Most changes delivered in one WatchUpdate.
constexpr size_t kMaxChangesPerUpdate = 1024;

absl::Status Closed() { return absl::FailedPreconditionError("the registry is closed"); }

// Names are checked on the client so that they can go into a URL as they are;
// the length limit is musterd's own (configurable), so only its upper bound
// is applied here.
Limits ClientLimits() {
  Limits limits;
  limits.max_name_length = 1024;
  return limits;
}

// Answers that ask to try again: musterd cannot serve now (503), its store
// did not answer in time (504), or a concurrent change got in the way (409).
// Every call is idempotent, so they are retried as transport errors are.
bool AsksToRetry(int http_status) {
  return http_status == 503 || http_status == 504 || http_status == 409;
}

// The error a non-success answer stands for: the code and message musterd
// put in its error body (core/wire/errors.h), e.g. DeadlineExceeded for a
// 504 and Aborted for a 409 in cluster mode.
absl::Status ErrorOf(const wire::HttpResponse& response) {
  absl::Status status = wire::StatusFromResponse(response);
  if (status.ok()) {
    return absl::InternalError(StrCat("unexpected HTTP ", response.status, " from musterd"));
  }
  return status;
}

bool IsRetryable(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status);
}

std::string ListTarget(const ServiceQuery& query) {
  wire::ListParams params;
  params.ns = query.ns;
  params.version = query.version;
  return wire::ListTarget(query.service, params);
}

// Delay before retry round `n` (0-based): initial * 2^n capped at `max`, then
// a uniformly random point of its upper half, so that clients that failed
// together do not retry together.
milliseconds Backoff(int n, milliseconds initial, milliseconds max) {
  double delay = static_cast<double>(initial.count());
  for (int i = 0; i < n && delay < static_cast<double>(max.count()); ++i) delay *= 2;
  delay = std::min(delay, static_cast<double>(max.count()));
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  return milliseconds(static_cast<int64_t>(delay * jitter(rng)));
}

class MusterRegistry final : public Registry {
 public:
  explicit MusterRegistry(MusterRegistryOptions options) : options_(std::move(options)) {
    for (const std::string& address : options_.addresses) {
      endpoints_.push_back(std::make_unique<Endpoint>(address));
    }
  }

  ~MusterRegistry() override {
    Close();
    // Close leaves alone only a subscription thread it runs on (Close from a
    // callback); destroying the registry from a callback is not allowed.
    std::vector<std::shared_ptr<Subscription>> left;
    {
      MutexLock lock(subs_mu_);
      left.swap(retired_);
    }
    for (auto& sub : left) {
      if (sub->thread.joinable()) sub->thread.join();
    }
  }

  absl::StatusOr<Instance> Register(const Instance& instance,
                                    const CallOptions& options) override {
    if (auto s = ValidateInstance(instance, limits_); !s.ok()) return s;
    auto response = Call({"PUT", wire::InstanceTarget(KeyOf(instance)), SerializeInstance(instance), {}},
                         options.timeout, nullptr);
    if (!response.ok()) return response.status();
    if (response->status != 200 && response->status != 201) return ErrorOf(*response);
    auto stored = ParseInstance(response->body);
    if (!stored.ok()) {
      return absl::InternalError(
          StrCat("musterd answered a malformed instance: ", MessageOf(stored.status())));
    }
    return stored;
  }

  absl::Status Deregister(const InstanceKey& key, const CallOptions& options) override {
    if (auto s = ValidateKey(key, limits_); !s.ok()) return s;
    auto response = Call({"DELETE", wire::InstanceTarget(key), {}, {}}, options.timeout, nullptr);
    if (!response.ok()) return response.status();
    return response->status == 200 ? absl::OkStatus() : ErrorOf(*response);
  }

  absl::Status UpdateService(const InstanceKey& key, const CallOptions& options) override {
    if (auto s = ValidateKey(key, limits_); !s.ok()) return s;
    auto response =
        Call({"PUT", wire::HeartbeatTarget(key), {}, {}}, options.timeout, nullptr);
    if (!response.ok()) return response.status();
    return response->status == 200 ? absl::OkStatus() : ErrorOf(*response);
  }

  absl::StatusOr<ServiceList> ListServices(const ServiceQuery& query,
                                           const CallOptions& options) override {
    if (auto s = ValidateQuery(query, limits_); !s.ok()) return s;
    return List(query, options.timeout, nullptr);
  }

  absl::StatusOr<SubscriptionId> Subscribe(const ServiceQuery& query,
                                           WatchCallback callback) override {
    if (auto s = ValidateQuery(query, limits_); !s.ok()) return s;
    if (!callback) return absl::InvalidArgumentError("a subscription needs a callback");
    MutexLock lock(subs_mu_);
    if (closed_) return Closed();
    ReapLocked();
    const SubscriptionId id = next_subscription_++;
    auto sub = std::make_shared<Subscription>(id, query, std::move(callback));
    sub->thread = std::thread([this, raw = sub.get()] { Follow(*raw); });
    subscriptions_.emplace(id, std::move(sub));
    return id;
  }

  void Unsubscribe(SubscriptionId id) override {
    std::shared_ptr<Subscription> sub;
    {
      MutexLock lock(subs_mu_);
      auto it = subscriptions_.find(id);
      if (it == subscriptions_.end()) return;
      sub = it->second;
      subscriptions_.erase(it);
      retired_.push_back(sub);  // its thread is joined later, it may still be in a request
    }
    Stop(*sub);
    // From its own callback the lock below is already held by this thread;
    // the callback is then running by definition and nothing runs after it.
    if (tls_current_ == sub.get()) return;
    MutexLock wait_for_callback(sub->callback_mu);
  }

  void Close() override {
    std::vector<std::shared_ptr<Subscription>> subs;
    {
      MutexLock lock(subs_mu_);
      {
        MutexLock wake(wake_mu_);
        closed_ = true;
      }
      for (auto& [id, sub] : subscriptions_) subs.push_back(std::move(sub));
      subscriptions_.clear();
      subs.insert(subs.end(), retired_.begin(), retired_.end());
      retired_.clear();
    }
    for (auto& sub : subs) Stop(*sub);
    wake_cv_.NotifyAll();
    std::vector<std::shared_ptr<Subscription>> keep;
    for (auto& sub : subs) {
      if (tls_current_ == sub.get()) {
        keep.push_back(sub);  // Close from this subscription's callback
      } else if (sub->thread.joinable()) {
        sub->thread.join();
      }
    }
    if (!keep.empty()) {
      MutexLock lock(subs_mu_);
      retired_.insert(retired_.end(), keep.begin(), keep.end());
    }
    for (auto& endpoint : endpoints_) endpoint->Clear();
  }

 private:
  // One musterd address and its idle connections.
  struct Endpoint {
    explicit Endpoint(std::string a) : address(std::move(a)) {}

    std::unique_ptr<wire::HttpClient> Acquire() {
      {
        MutexLock lock(mu);
        if (!idle.empty()) {
          auto client = std::move(idle.back());
          idle.pop_back();
          return client;
        }
      }
      return std::make_unique<wire::HttpClient>(address);
    }

    void Release(std::unique_ptr<wire::HttpClient> client, size_t max_idle) {
      MutexLock lock(mu);
      if (idle.size() < max_idle) idle.push_back(std::move(client));
    }

    void Clear() {
      MutexLock lock(mu);
      idle.clear();
    }

    const std::string address;
    Mutex mu;
    std::vector<std::unique_ptr<wire::HttpClient>> idle ABSL_GUARDED_BY(mu);
  };

  struct Subscription {
    Subscription(SubscriptionId i, ServiceQuery q, WatchCallback cb)
        : id(i), query(std::move(q)), callback(std::move(cb)) {}

    const SubscriptionId id;
    const ServiceQuery query;
    std::atomic<bool> stop{false};      // set by Unsubscribe or Close
    std::atomic<bool> finished{false};  // the thread is about to return
    // Held while the callback runs, so that Unsubscribe can wait for it.
    Mutex callback_mu;
    const WatchCallback callback ABSL_GUARDED_BY(callback_mu);
    std::thread thread;  // joined under subs_mu_ (or by Close, after taking it out)
  };

  // The subscription whose thread is the current thread, if any.
  static thread_local const Subscription* tls_current_;

  // Sends an idempotent request with retries (see the file comment). Returns
  // the first answer that does not ask to retry; Unavailable,
  // DeadlineExceeded or Aborted when no attempt got one; Cancelled when
  // `cancel` was set; FailedPrecondition once closed.
  absl::StatusOr<wire::HttpResponse> Call(const wire::HttpRequest& request,
                                            milliseconds timeout,
                                            const std::atomic<bool>* cancel) {
    if (closed_) return Closed();
    if (timeout.count() <= 0) {
      return absl::DeadlineExceededError("the call's timeout is not positive");
    }
    const auto deadline = Clock::now() + timeout;
    const size_t n = endpoints_.size();
    const size_t start = preferred_.load(std::memory_order_relaxed);
    absl::Status last = absl::UnavailableError("no attempt was made");
    auto out_of_time = [&](int attempts) {
      return absl::DeadlineExceededError(
          StrCat("the call's timeout of ", timeout.count(), " ms passed after ", attempts,
                 attempts == 1 ? " attempt" : " attempts", "; last error: ", MessageOf(last)));
    };
    for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
      if (attempt > 0 && attempt % static_cast<int>(n) == 0) {
        // Every address failed once more: back off before the next round.
        milliseconds pause = Backoff(attempt / static_cast<int>(n) - 1, options_.initial_backoff,
                                     options_.max_backoff);
        if (Clock::now() + pause >= deadline) return out_of_time(attempt);
        if (!Sleep(pause, cancel)) break;
      }
      const auto remaining = std::chrono::ceil<milliseconds>(deadline - Clock::now());
      if (remaining.count() <= 0) return out_of_time(attempt);
      const int left = options_.max_attempts - attempt;
      const milliseconds attempt_timeout =
          left > 1 ? std::max(remaining / left, std::min(remaining, kMinAttemptTimeout))
                   : remaining;

      const size_t index = (start + static_cast<size_t>(attempt)) % n;
      Endpoint& endpoint = *endpoints_[index];
      std::unique_ptr<wire::HttpClient> connection = endpoint.Acquire();
      auto response = connection->Do(request, attempt_timeout);
      if (response.ok()) {
        if (!closed_) endpoint.Release(std::move(connection), options_.max_idle_connections);
        if (!AsksToRetry(response->status)) {
          preferred_.store(index, std::memory_order_relaxed);
          return response;
        }
        last = ErrorOf(*response);
      } else {
        last = response.status();  // the connection is dropped with the client
      }
      if (closed_ || (cancel != nullptr && *cancel)) break;
    }
    if (closed_) return Closed();
    if (cancel != nullptr && *cancel) return absl::CancelledError("the subscription stopped");
    if (absl::IsDeadlineExceeded(last) || absl::IsAborted(last)) return last;
    return absl::UnavailableError(StrCat("musterd is unreachable after ", options_.max_attempts,
                                         options_.max_attempts == 1 ? " attempt" : " attempts",
                                         ": ", MessageOf(last)));
  }

  absl::StatusOr<ServiceList> List(const ServiceQuery& query, milliseconds timeout,
                                   const std::atomic<bool>* cancel) {
    auto response = Call({"GET", ListTarget(query), {}, {}}, timeout, cancel);
    if (!response.ok()) return response.status();
    if (response->status != 200) return ErrorOf(*response);
    auto answer = wire::DecodeListAnswer(response->body);
    if (!answer.ok()) return answer.status();
    return ServiceList{answer->revision, std::move(answer->instances)};
  }

  // Waits `duration`; false when the registry closed or `cancel` was set first.
  bool Sleep(milliseconds duration, const std::atomic<bool>* cancel) {
    const auto deadline = std::chrono::steady_clock::now() + duration;
    auto stopped = [&] { return closed_ || (cancel != nullptr && *cancel); };
    MutexLock lock(wake_mu_);
    while (!stopped() && wake_cv_.WaitUntil(wake_mu_, deadline)) {
    }
    return !stopped();
  }

  void Stop(Subscription& sub) {
    {
      MutexLock wake(wake_mu_);
      sub.stop = true;
    }
    wake_cv_.NotifyAll();
  }

  // Joins the threads of unsubscribed subscriptions that have finished.
  void ReapLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(subs_mu_) {
    std::erase_if(retired_, [](const std::shared_ptr<Subscription>& sub) {
      if (!sub->finished) return false;
      sub->thread.join();
      return true;
    });
  }

  // Runs the callback unless the subscription stopped.
  void Deliver(Subscription& sub, const WatchUpdate& update) {
    MutexLock lock(sub.callback_mu);
    if (sub.stop) return;
    sub.callback(update);
  }

  // Opens the watch stream from revision `from`, trying every address from the
  // preferred one on. OutOfRange (410) is returned at once.
  absl::StatusOr<std::unique_ptr<wire::SseStream>> OpenWatch(const Subscription& sub,
                                                               uint64_t from) {
    const size_t n = endpoints_.size();
    const size_t start = preferred_.load(std::memory_order_relaxed);
    absl::Status last;
    for (size_t i = 0; i < n && !sub.stop; ++i) {
      const size_t index = (start + i) % n;
      auto stream = wire::SseStream::Open(endpoints_[index]->address,
                                            wire::WatchTarget(sub.query.ns, {sub.query.service}, from),
                                            {}, kWatchOpenTimeout);
      if (stream.ok()) {
        preferred_.store(index, std::memory_order_relaxed);
        return stream;
      }
      last = stream.status();
      if (absl::IsOutOfRange(last)) return last;
    }
    if (sub.stop) return absl::CancelledError("the subscription stopped");
    return last;
  }

  // The subscription's thread: snapshot, then the watch stream, across outages.
  void Follow(Subscription& sub) {
    tls_current_ = &sub;
    client::SubscriptionView view(sub.query.version);
    bool synced = false;   // a snapshot was delivered and `last` is its revision or later
    bool outage = false;   // an Unavailable update was delivered and nothing OK since
    uint64_t last = 0;     // the last revision seen
    int failures = 0;      // consecutive failures, for the backoff

    auto report = [&](const absl::Status& status) {
      if (outage) return;
      outage = true;
      WatchUpdate update;
      update.status = IsRetryable(status)
                          ? absl::UnavailableError(
                                StrCat("musterd is unreachable: ", MessageOf(status)))
                          : status;
      update.revision = last;
      Deliver(sub, update);
    };

    while (!sub.stop) {
      if (failures > 0 &&
          !Sleep(Backoff(failures - 1, options_.initial_backoff, options_.max_backoff), &sub.stop)) {
        break;
      }
      if (!synced) {
        auto list = List(sub.query, kSubscriptionListTimeout, &sub.stop);
        if (sub.stop) break;
        if (!list.ok()) {
          report(list.status());
          ++failures;
          continue;
        }
        view.Reset(list->instances);
        last = list->revision;
        synced = true;
        outage = false;
        WatchUpdate update;
        update.snapshot = true;
        update.revision = list->revision;
        update.instances = std::move(list->instances);
        Deliver(sub, update);
      }

      auto stream = OpenWatch(sub, last + 1);
      if (sub.stop) break;
      if (!stream.ok()) {
        if (absl::IsOutOfRange(stream.status())) {
          synced = false;  // the history moved on: list again
        } else {
          report(stream.status());
        }
        ++failures;
        continue;
      }
      if (outage) {
        outage = false;
        WatchUpdate update;  // reachable again; resuming loses nothing
        update.revision = last;
        Deliver(sub, update);
      }
      const auto opened = Clock::now();
      bool progress = false;
      absl::Status ended = Read(sub, **stream, view, last, progress);
      if (sub.stop) break;
      if (progress || Clock::now() - opened >= kStableStream) failures = 0;
      ++failures;
      if (absl::IsOutOfRange(ended) || absl::IsInternal(ended)) {
        synced = false;  // compacted, or an event we cannot trust: resync
      } else if (absl::IsDeadlineExceeded(ended)) {
        // A silent stream: open a new one. Nothing is lost (it resumes from
        // last + 1); if musterd is really gone, opening fails and reports.
      } else {
        report(ended);
      }
    }
    sub.finished = true;
  }

  // Delivers the stream's changes until it ends (Unavailable), is compacted
  // (OutOfRange), sends something malformed (Internal), stays silent for
  // stream_idle_timeout (DeadlineExceeded) or the subscription stops. `last`
  // follows the revisions seen; `progress` is set once any event arrived.
  absl::Status Read(Subscription& sub, wire::SseStream& stream, client::SubscriptionView& view,
                    uint64_t& last, bool& progress) {
    // Adds one event to `update`.
    auto take = [&](const wire::SseEvent& event, WatchUpdate& update) -> absl::Status {
      // OutOfRange for "compacted", Internal for a malformed event.
      auto decoded = wire::DecodeWatchEvent(event.event, event.data);
      if (!decoded.ok()) return decoded.status();
      if (!decoded->has_value()) return absl::OkStatus();  // not a change: ignored
      wire::WatchEvent& e = **decoded;
      progress = true;
      if (e.revision <= last) return absl::OkStatus();  // seen already
      last = e.revision;
      // A check changed state: to a subscriber the instance was updated (its
      // health and check states are in the event's instance; muster/change.h).
      const ChangeType type = e.type == ChangeType::kHealth ? ChangeType::kUpdated : e.type;
      if (std::optional<Change> seen = view.Apply(Change{e.revision, type, std::move(e.instance)})) {
        update.changes.push_back(*std::move(seen));
        update.revision = last;
      }
      return absl::OkStatus();
    };

    auto heard = Clock::now();  // when the last event or keep-alive came
    uint64_t comments = stream.comments_seen();
    while (!sub.stop) {
      auto event = stream.Next(std::min(kStreamPoll, options_.stream_idle_timeout));
      if (stream.comments_seen() != comments) {
        comments = stream.comments_seen();
        heard = Clock::now();
      }
      if (absl::IsDeadlineExceeded(event.status())) {
        if (Clock::now() - heard < options_.stream_idle_timeout) continue;
        return absl::DeadlineExceededError(
            StrCat("nothing from musterd on the watch stream for ",
                   options_.stream_idle_timeout.count(), " ms, not even a keep-alive"));
      }
      if (!event.ok()) return event.status();
      heard = Clock::now();
      WatchUpdate update;
      absl::Status status = take(*event, update);
      // Events already received go out in the same update.
      while (status.ok() && update.changes.size() < kMaxChangesPerUpdate) {
        auto more = stream.Next(milliseconds(0));
        if (!more.ok()) break;  // nothing buffered, or the end (seen by the next Next)
        status = take(*more, update);
      }
      if (!update.changes.empty()) Deliver(sub, update);
      if (!status.ok()) return status;
    }
    return absl::CancelledError("the subscription stopped");
  }

  // Constant after construction.
  const MusterRegistryOptions options_;
  const Limits limits_ = ClientLimits();
  std::vector<std::unique_ptr<Endpoint>> endpoints_;  // one per address, in order

  // The address that answered last, where calls start.
  std::atomic<size_t> preferred_{0};

  // Sleepers (backoffs) wait on wake_cv_; Close and Unsubscribe wake them.
  Mutex wake_mu_ ABSL_ACQUIRED_AFTER(subs_mu_);
  CondVar wake_cv_;
  std::atomic<bool> closed_{false};  // written under subs_mu_ and wake_mu_

  Mutex subs_mu_;
  SubscriptionId next_subscription_ ABSL_GUARDED_BY(subs_mu_) = 1;
  std::map<SubscriptionId, std::shared_ptr<Subscription>> subscriptions_
      ABSL_GUARDED_BY(subs_mu_);
  // Unsubscribed subscriptions whose threads are not joined yet.
  std::vector<std::shared_ptr<Subscription>> retired_ ABSL_GUARDED_BY(subs_mu_);
};

thread_local const MusterRegistry::Subscription* MusterRegistry::tls_current_ = nullptr;

}  // namespace

absl::StatusOr<std::unique_ptr<Registry>> NewMusterRegistry(const MusterRegistryOptions& options) {
  if (options.addresses.empty()) {
    return absl::InvalidArgumentError("a musterd registry needs at least one address");
  }
  for (const std::string& address : options.addresses) {
    if (auto split = SplitHostPort(address, AddressUse::kDial); !split.ok()) {
      return absl::InvalidArgumentError(
          StrCat("bad musterd address \"", address, "\": ", MessageOf(split.status())));
    }
  }
  if (options.max_attempts < 1) {
    return absl::InvalidArgumentError("max_attempts must be at least 1");
  }
  if (options.initial_backoff.count() < 0 || options.max_backoff < options.initial_backoff) {
    return absl::InvalidArgumentError(
        "backoffs must satisfy 0 <= initial_backoff <= max_backoff");
  }
  // A limit at or below musterd's --watch-keepalive would reopen quiet streams
  // for nothing, but the server's setting is not known here: only documented.
  if (options.stream_idle_timeout.count() <= 0) {
    return absl::InvalidArgumentError("stream_idle_timeout must be positive");
  }
  return std::unique_ptr<Registry>(std::make_unique<MusterRegistry>(options));
}

}  // namespace muster
