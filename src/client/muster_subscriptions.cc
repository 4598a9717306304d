// MusterRegistry's subscriptions (the class is in muster_registry.h; its
// calls are in muster_registry.cc): Subscribe, Unsubscribe and Close, and the
// thread that follows each subscription over musterd's watch stream.
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
#include "client/muster_registry.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/service_query.h"
#include "client/subscription_view.h"
#include "core/mutex.h"
#include "core/strings.h"
#include "core/wire/answers.h"
#include "core/wire/http_client.h"
#include "core/wire/paths.h"
#include "muster/registry.h"

namespace muster::client {
namespace {

using std::chrono::milliseconds;

// How long one read of a watch stream waits before looking at the stop flag.
constexpr milliseconds kStreamPoll{200};
// Bounds on the requests a subscription makes itself.
constexpr milliseconds kSubscriptionListTimeout{5000};
constexpr milliseconds kWatchOpenTimeout{2000};
// A stream that stayed open this long counts as healthy: the backoff starts over.
constexpr milliseconds kStableStream{1000};
// Most changes delivered in one WatchUpdate.
constexpr size_t kMaxChangesPerUpdate = 1024;

bool IsRetryable(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status);
}

}  // namespace

thread_local const MusterRegistry::Subscription* MusterRegistry::tls_current_ = nullptr;

MusterRegistry::~MusterRegistry() {
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

absl::StatusOr<SubscriptionId> MusterRegistry::Subscribe(const ServiceQuery& query,
                                                         WatchCallback callback) {
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

void MusterRegistry::Unsubscribe(SubscriptionId id) {
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

void MusterRegistry::Close() {
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

void MusterRegistry::Stop(Subscription& sub) {
  {
    MutexLock wake(wake_mu_);
    sub.stop = true;
  }
  wake_cv_.NotifyAll();
}

void MusterRegistry::ReapLocked() {
  std::erase_if(retired_, [](const std::shared_ptr<Subscription>& sub) {
    if (!sub->finished) return false;
    sub->thread.join();
    return true;
  });
}

void MusterRegistry::Deliver(Subscription& sub, const WatchUpdate& update) {
  MutexLock lock(sub.callback_mu);
  if (sub.stop) return;
  sub.callback(update);
}

absl::StatusOr<std::unique_ptr<wire::SseStream>> MusterRegistry::OpenWatch(
    const Subscription& sub, uint64_t from) {
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

void MusterRegistry::Follow(Subscription& sub) {
  tls_current_ = &sub;
  client::SubscriptionView view(sub.query);
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

absl::Status MusterRegistry::Read(Subscription& sub, wire::SseStream& stream,
                                  client::SubscriptionView& view, uint64_t& last,
                                  bool& progress) {
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

}  // namespace muster::client
