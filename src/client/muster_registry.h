// MusterRegistry, the SDK's musterd backend (NewMusterRegistry in
// muster/registry.h): the class, whose members are defined in two files. The
// calls, with their retries across addresses and the connection pool, are in
// muster_registry.cc; the subscriptions, each followed by a thread of its own
// over the watch stream, and Close are in muster_subscriptions.cc. Private to
// src/client.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/subscription_view.h"
#include "core/limits.h"
#include "core/mutex.h"
#include "core/wire/http_client.h"
#include "muster/registry.h"

namespace muster::client {

class MusterRegistry final : public Registry {
 public:
  explicit MusterRegistry(MusterRegistryOptions options);
  ~MusterRegistry() override;

  // The calls (muster_registry.cc).
  absl::StatusOr<Instance> Register(const Instance& instance,
                                    const CallOptions& options) override;
  absl::Status Deregister(const InstanceKey& key, const CallOptions& options) override;
  absl::Status UpdateService(const InstanceKey& key, const CallOptions& options) override;
  absl::StatusOr<ServiceList> ListServices(const ServiceQuery& query,
                                           const CallOptions& options) override;

  // The subscriptions (muster_subscriptions.cc).
  absl::StatusOr<SubscriptionId> Subscribe(const ServiceQuery& query,
                                           WatchCallback callback) override;
  void Unsubscribe(SubscriptionId id) override;
  void Close() override;

 private:
  using Clock = std::chrono::steady_clock;

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

  // FailedPrecondition, what every call answers once the registry is closed.
  static absl::Status Closed();

  // Names are checked on the client so that they can go into a URL as they are;
  // the length limit is musterd's own (configurable), so only its upper bound
  // is applied here.
  static Limits ClientLimits();

  // Delay before retry round `n` (0-based): initial * 2^n capped at `max`, then
  // a uniformly random point of its upper half, so that clients that failed
  // together do not retry together.
  static std::chrono::milliseconds Backoff(int n, std::chrono::milliseconds initial,
                                           std::chrono::milliseconds max);

  // ---- The calls (muster_registry.cc).

  // Sends an idempotent request with retries (see muster_registry.cc's top
  // comment). Returns the first answer that does not ask to retry;
  // Unavailable, DeadlineExceeded or Aborted when no attempt got one;
  // Cancelled when `cancel` was set; FailedPrecondition once closed.
  absl::StatusOr<wire::HttpResponse> Call(const wire::HttpRequest& request,
                                          std::chrono::milliseconds timeout,
                                          const std::atomic<bool>* cancel);

  absl::StatusOr<ServiceList> List(const ServiceQuery& query, std::chrono::milliseconds timeout,
                                   const std::atomic<bool>* cancel);

  // Waits `duration`; false when the registry closed or `cancel` was set first.
  bool Sleep(std::chrono::milliseconds duration, const std::atomic<bool>* cancel);

  // ---- The subscriptions (muster_subscriptions.cc).

  void Stop(Subscription& sub);

  // Joins the threads of unsubscribed subscriptions that have finished.
  void ReapLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(subs_mu_);

  // Runs the callback unless the subscription stopped.
  void Deliver(Subscription& sub, const WatchUpdate& update);

  // Opens the watch stream from revision `from`, trying every address from the
  // preferred one on. OutOfRange (410) is returned at once.
  absl::StatusOr<std::unique_ptr<wire::SseStream>> OpenWatch(const Subscription& sub,
                                                             uint64_t from);

  // The subscription's thread: snapshot, then the watch stream, across outages.
  void Follow(Subscription& sub);

  // Delivers the stream's changes until it ends (Unavailable), is compacted
  // (OutOfRange), sends something malformed (Internal), stays silent for
  // stream_idle_timeout (DeadlineExceeded) or the subscription stops. `last`
  // follows the revisions seen; `progress` is set once any event arrived.
  absl::Status Read(Subscription& sub, wire::SseStream& stream, SubscriptionView& view,
                    uint64_t& last, bool& progress);

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

}  // namespace muster::client
