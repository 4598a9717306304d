// NewEtcdRegistry: the Registry backend over etcd's v3 API. The key layout and
// what watch events mean are in src/etcd/layout.h; how instances are written
// in src/etcd/instance_store.h (shared with musterd's cluster store); the
// connection (endpoints, failover, auth, TLS, the shared keep-alive stream) in
// src/etcd/client.h.
//
// Subscriptions watch the whole service (so that moves between versions are
// seen) from the revision of a Range, through a Watcher thread each, and
// filter with SubscriptionView. Unsubscribe does not wait for a thread that
// may be inside a Range: it makes sure no callback runs any more, and the
// thread is joined later.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/service_query.h"
#include "client/subscription_view.h"
#include "core/limits.h"
#include "core/mutex.h"
#include "core/strings.h"
#include "core/validation.h"
#include "etcd/client.h"
#include "etcd/instance_store.h"
#include "etcd/layout.h"
#include "etcd/watcher.h"
#include "muster/registry.h"

namespace muster {
namespace {

absl::Status Closed() { return absl::FailedPreconditionError("the registry is closed"); }

using etcd::PrefixRange;

// Bound of a subscription's Range; also how long Unsubscribe's thread may
// take to end while etcd does not answer.
constexpr std::chrono::seconds kResyncTimeout{5};

class EtcdRegistry final : public Registry {
 public:
  EtcdRegistry(const EtcdRegistryOptions& options, std::unique_ptr<etcd::Client> client)
      : ttl_override_(options.ttl),
        layout_(options.prefix),
        client_(std::move(client)),
        store_(*client_, layout_) {}

  ~EtcdRegistry() override {
    Close();
    std::vector<std::shared_ptr<Subscription>> retired;
    {
      MutexLock lock(mu_);
      retired.swap(retired_);
    }
    retired.clear();  // joins their watcher threads
  }

  absl::StatusOr<Instance> Register(const Instance& requested,
                                    const CallOptions& options) override {
    if (absl::Status s = ValidateInstance(requested, limits_); !s.ok()) return s;
    if (absl::Status s = CheckOpen(); !s.ok()) return s;
    Instance instance = requested;
    if (ttl_override_.count() > 0) instance.ttl_seconds = static_cast<uint32_t>(ttl_override_.count());
    absl::StatusOr<etcd::InstanceStore::Written> written =
        store_.Register(instance, etcd::DeadlineIn(options.timeout));
    if (!written.ok()) return written.status();
    return std::move(written->instance);
  }

  absl::Status Deregister(const InstanceKey& key, const CallOptions& options) override {
    if (absl::Status s = ValidateKey(key, limits_); !s.ok()) return s;
    if (absl::Status s = CheckOpen(); !s.ok()) return s;
    return store_.Deregister(key, etcd::DeadlineIn(options.timeout)).status();
  }

  absl::Status UpdateService(const InstanceKey& key, const CallOptions& options) override {
    if (absl::Status s = ValidateKey(key, limits_); !s.ok()) return s;
    if (absl::Status s = CheckOpen(); !s.ok()) return s;
    return store_.Heartbeat(key, etcd::DeadlineIn(options.timeout)).status();
  }

  absl::StatusOr<ServiceList> ListServices(const ServiceQuery& query,
                                           const CallOptions& options) override {
    if (absl::Status s = ValidateQuery(query, limits_); !s.ok()) return s;
    if (absl::Status s = CheckOpen(); !s.ok()) return s;
    const std::string prefix = query.version.empty()
                                   ? layout_.ServicePrefix(query.ns, query.service)
                                   : layout_.VersionPrefix(query.ns, query.service, query.version);
    absl::StatusOr<etcd::InstanceStore::Listed> listed =
        store_.List(prefix, etcd::DeadlineIn(options.timeout));
    if (!listed.ok()) return listed.status();
    ServiceList list;
    list.revision = listed->revision;
    list.instances = std::move(listed->instances);
    // The key prefix chose the version; the tags are in the values.
    std::erase_if(list.instances, [&](const Instance& in) { return !in.HasTags(query.tags); });
    return list;
  }

  absl::StatusOr<SubscriptionId> Subscribe(const ServiceQuery& query,
                                           WatchCallback callback) override {
    if (absl::Status s = ValidateQuery(query, limits_); !s.ok()) return s;
    if (!callback) return absl::InvalidArgumentError("a subscription needs a callback");
    std::vector<std::shared_ptr<Subscription>> reaped;  // joined after the lock is released
    MutexLock lock(mu_);
    if (closed_) return Closed();
    reaped = TakeReapableLocked();
    const SubscriptionId id = next_subscription_++;
    auto sub = std::make_shared<Subscription>(query, std::move(callback));
    Subscription* raw = sub.get();
    const std::string prefix = layout_.ServicePrefix(query.ns, query.service);
    etcd::WatchHandler handler;
    handler.resync = [this, raw, prefix]() -> absl::StatusOr<int64_t> {
      absl::StatusOr<etcd::InstanceStore::Listed> listed =
          store_.List(prefix, etcd::DeadlineIn(kResyncTimeout));
      if (!listed.ok()) return listed.status();
      WatchUpdate update;
      update.snapshot = true;
      update.revision = listed->revision;
      for (Instance& instance : listed->instances) {
        if (raw->view.Matches(instance)) update.instances.push_back(std::move(instance));
      }
      raw->view.Reset(update.instances);
      Deliver(*raw, update);
      return static_cast<int64_t>(listed->revision);
    };
    handler.on_events = [this, raw](const std::vector<mvccpb::Event>& events, int64_t revision) {
      WatchUpdate update;
      update.revision = static_cast<uint64_t>(revision);
      for (const Change& change : etcd::ChangesFromEvents(layout_, events)) {
        if (std::optional<Change> seen = raw->view.Apply(change)) {
          update.changes.push_back(*std::move(seen));
        }
      }
      if (!events.empty() && update.changes.empty()) return;  // nothing of this subscription's
      if (!update.changes.empty()) update.revision = update.changes.back().revision;
      Deliver(*raw, update);
    };
    handler.on_error = [this, raw](const absl::Status& status) {
      WatchUpdate update;
      update.status = status;
      Deliver(*raw, update);
    };
    sub->watcher = std::make_unique<etcd::Watcher>(*client_, prefix, etcd::PrefixEnd(prefix),
                                                   std::move(handler));
    subscriptions_.emplace(id, std::move(sub));
    return id;
  }

  void Unsubscribe(SubscriptionId id) override {
    std::shared_ptr<Subscription> sub;
    {
      MutexLock lock(mu_);
      auto it = subscriptions_.find(id);
      if (it == subscriptions_.end()) return;
      sub = std::move(it->second);
      subscriptions_.erase(it);
      retired_.push_back(sub);  // joined later: its thread may be inside a Range
    }
    Silence(*sub);
  }

  void Close() override {
    std::vector<std::shared_ptr<Subscription>> subs;
    {
      MutexLock lock(mu_);
      closed_ = true;
      for (auto& [id, sub] : subscriptions_) subs.push_back(sub);
      subscriptions_.clear();
      retired_.insert(retired_.end(), subs.begin(), subs.end());
    }
    for (auto& sub : subs) Silence(*sub);
    // Join every thread except the one Close may be called from (a callback's).
    std::vector<std::shared_ptr<Subscription>> reaped;
    {
      MutexLock lock(mu_);
      reaped = TakeReapableLocked();
    }
  }

 private:
  struct Subscription {
    Subscription(ServiceQuery q, WatchCallback cb)
        : query(std::move(q)), view(query), callback(std::move(cb)) {}
    ~Subscription() { watcher.reset(); }  // joins the thread first: it uses the rest

    const ServiceQuery query;
    client::SubscriptionView view;  // the watcher thread's only
    const WatchCallback callback;
    Mutex callback_mu;  // held while `callback` runs
    bool silenced ABSL_GUARDED_BY(callback_mu) = false;
    std::unique_ptr<etcd::Watcher> watcher;  // set once, before the thread can call back
  };

  absl::Status CheckOpen() {
    MutexLock lock(mu_);
    return closed_ ? Closed() : absl::OkStatus();
  }

  // Runs the callback unless the subscription was silenced.
  void Deliver(Subscription& sub, const WatchUpdate& update) {
    MutexLock lock(sub.callback_mu);
    if (sub.silenced) return;
    tls_current_ = &sub;
    sub.callback(update);
    tls_current_ = nullptr;
  }

  // After this, the subscription's callback does not run again (and is not
  // running, unless this is called from it).
  void Silence(Subscription& sub) {
    sub.watcher->Stop();
    if (tls_current_ == &sub) {
      sub.callback_mu.AssertHeld();  // by this very thread, in Deliver
      sub.silenced = true;
      return;
    }
    MutexLock lock(sub.callback_mu);
    sub.silenced = true;
  }

  // The retired subscriptions except the calling thread's own: destroying
  // them (without mu_ held; a thread may be finishing a Range) joins them.
  std::vector<std::shared_ptr<Subscription>> TakeReapableLocked()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<std::shared_ptr<Subscription>> done;
    std::vector<std::shared_ptr<Subscription>> keep;
    for (auto& sub : retired_) {
      (tls_current_ == sub.get() ? keep : done).push_back(std::move(sub));
    }
    retired_ = std::move(keep);
    return done;
  }

  static thread_local const Subscription* tls_current_;

  const Limits limits_;
  const std::chrono::seconds ttl_override_;
  const etcd::Layout layout_;
  // Declared before the subscriptions so that they outlive their watchers.
  const std::unique_ptr<etcd::Client> client_;
  etcd::InstanceStore store_;

  Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  SubscriptionId next_subscription_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<SubscriptionId, std::shared_ptr<Subscription>> subscriptions_ ABSL_GUARDED_BY(mu_);
  // Unsubscribed or closed, threads not yet joined.
  std::vector<std::shared_ptr<Subscription>> retired_ ABSL_GUARDED_BY(mu_);
};

thread_local const EtcdRegistry::Subscription* EtcdRegistry::tls_current_ = nullptr;

}  // namespace

absl::StatusOr<std::unique_ptr<Registry>> NewEtcdRegistry(const EtcdRegistryOptions& options) {
  if (options.ttl.count() < 0 || options.ttl.count() > Limits{}.max_ttl_seconds) {
    return absl::InvalidArgumentError(
        StrCat("ttl must be 0 (use each instance's) or 1..", Limits{}.max_ttl_seconds, " s"));
  }
  if (options.prefix.find_first_of("\n\r") != std::string::npos) {
    return absl::InvalidArgumentError("the key prefix must be one line");
  }
  etcd::ClientOptions client_options;
  client_options.endpoints = options.endpoints;
  client_options.dial_timeout = options.dial_timeout;
  client_options.username = options.username;
  client_options.password = options.password;
  client_options.tls = options.tls;
  client_options.ca_file = options.ca_file;
  client_options.cert_file = options.cert_file;
  client_options.key_file = options.key_file;
  client_options.keepalive_interval = options.keepalive_interval;
  client_options.max_retries = options.max_retries;
  client_options.retry_interval = options.retry_interval;
  absl::StatusOr<std::unique_ptr<etcd::Client>> client =
      etcd::Client::Connect(std::move(client_options));
  if (!client.ok()) return client.status();
  return std::unique_ptr<Registry>(new EtcdRegistry(options, *std::move(client)));
}

}  // namespace muster
