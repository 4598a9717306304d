// NewEtcdRegistry: the Registry backend over etcd's v3 API. The key layout and
// what watch events mean are in src/etcd/layout.h; the connection (endpoints,
// failover, auth, TLS, the shared keep-alive stream) in src/etcd/client.h.
//
// Register reads the instance's key. The same registration again renews the
// lease and writes nothing. A changed one is written by a transaction that
// compares the key's mod_revision with the one read (a new key: that it does
// not exist), so two writers of one instance never both win; the loser reads
// again. A registration under another version moves the instance: the same
// transaction deletes its old key. Each instance with a TTL has a lease of
// its own, reused while the TTL stays the same.
//
// Heartbeat (UpdateService) is one keep-alive of the instance's lease on the
// shared stream. The lease comes from a cache of what this registry
// registered or found, checked against etcd when the renewal fails.
//
// Deregister deletes the key and writes the deregistration marker in one
// transaction, then revokes the lease.
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
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/service_query.h"
#include "client/subscription_view.h"
#include "core/limits.h"
#include "core/strings.h"
#include "core/validation.h"
#include "etcd/client.h"
#include "etcd/layout.h"
#include "etcd/watcher.h"
#include "muster/registry.h"

namespace muster {
namespace {

using etcd::Deadline;

absl::Status Closed() { return absl::FailedPreconditionError("the registry is closed"); }

// How often Register and Deregister read again after losing a race.
constexpr int kMaxConflicts = 16;
// Bound of a subscription's Range; also how long Unsubscribe's thread may
// take to end while etcd does not answer.
constexpr std::chrono::seconds kResyncTimeout{5};

absl::Status NotRegistered(const InstanceKey& key) {
  return absl::NotFoundError(StrCat("instance ", key.id, " of service ", key.service,
                                    " in namespace ", key.ns, " is not registered"));
}

etcdserverpb::Compare ModEquals(const std::string& key, int64_t mod_revision) {
  etcdserverpb::Compare compare;
  compare.set_key(key);
  compare.set_target(etcdserverpb::Compare::MOD);
  compare.set_result(etcdserverpb::Compare::EQUAL);
  compare.set_mod_revision(mod_revision);
  return compare;
}

etcdserverpb::Compare Absent(const std::string& key) {
  etcdserverpb::Compare compare;
  compare.set_key(key);
  compare.set_target(etcdserverpb::Compare::CREATE);
  compare.set_result(etcdserverpb::Compare::EQUAL);
  compare.set_create_revision(0);
  return compare;
}

void AddPut(etcdserverpb::TxnRequest& txn, std::string key, std::string value, int64_t lease) {
  etcdserverpb::PutRequest* put = txn.add_success()->mutable_request_put();
  put->set_key(std::move(key));
  put->set_value(std::move(value));
  put->set_lease(lease);
}

void AddDelete(etcdserverpb::TxnRequest& txn, std::string key) {
  txn.add_success()->mutable_request_delete_range()->set_key(std::move(key));
}

etcdserverpb::RangeRequest PrefixRange(const std::string& prefix, bool keys_only) {
  etcdserverpb::RangeRequest range;
  range.set_key(prefix);
  range.set_range_end(etcd::PrefixEnd(prefix));
  range.set_keys_only(keys_only);
  return range;
}

class EtcdRegistry final : public Registry {
 public:
  EtcdRegistry(const EtcdRegistryOptions& options, std::unique_ptr<etcd::Client> client)
      : ttl_override_(options.ttl), layout_(options.prefix), client_(std::move(client)) {}

  ~EtcdRegistry() override {
    Close();
    std::vector<std::shared_ptr<Subscription>> retired;
    {
      std::lock_guard lock(mu_);
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
    instance.health = Health::kPassing;
    const Deadline deadline = etcd::DeadlineIn(options.timeout);
    const std::string key = layout_.InstanceKey(instance);

    for (int conflict = 0; conflict < kMaxConflicts; ++conflict) {
      etcdserverpb::RangeRequest get;
      get.set_key(key);
      absl::StatusOr<etcdserverpb::RangeResponse> current = client_->Range(get, deadline);
      if (!current.ok()) return current.status();
      absl::StatusOr<Instance> stored =
          current->kvs().empty()
              ? RegisterNew(instance, key, deadline)
              : RegisterOver(instance, key, current->kvs(0), deadline);
      if (stored.ok() || stored.status().code() != absl::StatusCode::kAborted) return stored;
    }
    return absl::AbortedError(StrCat("instance ", instance.id,
                                     " kept changing under this registration; try again"));
  }

  absl::Status Deregister(const InstanceKey& key, const CallOptions& options) override {
    if (absl::Status s = ValidateKey(key, limits_); !s.ok()) return s;
    if (absl::Status s = CheckOpen(); !s.ok()) return s;
    const Deadline deadline = etcd::DeadlineIn(options.timeout);
    for (int conflict = 0; conflict < kMaxConflicts; ++conflict) {
      absl::StatusOr<mvccpb::KeyValue> kv = Locate(key, deadline);
      if (!kv.ok()) return kv.status();
      etcdserverpb::TxnRequest txn;
      *txn.add_compare() = ModEquals(kv->key(), kv->mod_revision());
      AddDelete(txn, kv->key());
      AddPut(txn, layout_.DeregisteredKey(key.ns, key.service), key.id, 0);
      absl::StatusOr<etcdserverpb::TxnResponse> done = client_->Txn(txn, deadline);
      if (!done.ok()) return done.status();
      if (!done->succeeded()) continue;  // changed meanwhile: look again
      Forget(key);
      if (kv->lease() != 0) (void)client_->LeaseRevoke(kv->lease(), deadline);
      return absl::OkStatus();
    }
    return absl::AbortedError(StrCat("instance ", key.id, " kept changing; try again"));
  }

  absl::Status UpdateService(const InstanceKey& key, const CallOptions& options) override {
    if (absl::Status s = ValidateKey(key, limits_); !s.ok()) return s;
    if (absl::Status s = CheckOpen(); !s.ok()) return s;
    const Deadline deadline = etcd::DeadlineIn(options.timeout);
    // Fast path: renew the lease this registry knows; nothing else is read.
    if (std::optional<Known> known = Lookup(key); known.has_value() && known->lease != 0) {
      absl::StatusOr<int64_t> ttl = client_->KeepAliveOnce(known->lease, deadline);
      if (ttl.ok()) return absl::OkStatus();
      if (ttl.status().code() != absl::StatusCode::kNotFound) return ttl.status();
      Forget(key);  // the lease is gone; the instance may have another now
    }
    absl::StatusOr<mvccpb::KeyValue> kv = Locate(key, deadline);
    if (!kv.ok()) return kv.status();
    if (kv->lease() == 0) return absl::OkStatus();  // registered without a TTL
    absl::StatusOr<int64_t> ttl = client_->KeepAliveOnce(kv->lease(), deadline);
    if (ttl.ok()) return absl::OkStatus();
    if (ttl.status().code() == absl::StatusCode::kNotFound) {
      Forget(key);
      return NotRegistered(key);  // it expired a moment ago
    }
    return ttl.status();
  }

  absl::StatusOr<ServiceList> ListServices(const ServiceQuery& query,
                                           const CallOptions& options) override {
    if (absl::Status s = ValidateQuery(query, limits_); !s.ok()) return s;
    if (absl::Status s = CheckOpen(); !s.ok()) return s;
    const std::string prefix = query.version.empty()
                                   ? layout_.ServicePrefix(query.ns, query.service)
                                   : layout_.VersionPrefix(query.ns, query.service, query.version);
    absl::StatusOr<etcdserverpb::RangeResponse> range =
        client_->Range(PrefixRange(prefix, false), etcd::DeadlineIn(options.timeout));
    if (!range.ok()) return range.status();
    ServiceList list;
    list.revision = static_cast<uint64_t>(range->header().revision());
    list.instances = Decode(*range);
    return list;
  }

  absl::StatusOr<SubscriptionId> Subscribe(const ServiceQuery& query,
                                           WatchCallback callback) override {
    if (absl::Status s = ValidateQuery(query, limits_); !s.ok()) return s;
    if (!callback) return absl::InvalidArgumentError("a subscription needs a callback");
    std::vector<std::shared_ptr<Subscription>> reaped;  // joined after the lock is released
    std::lock_guard lock(mu_);
    if (closed_) return Closed();
    reaped = TakeReapableLocked();
    const SubscriptionId id = next_subscription_++;
    auto sub = std::make_shared<Subscription>(query, std::move(callback));
    Subscription* raw = sub.get();
    const std::string prefix = layout_.ServicePrefix(query.ns, query.service);
    etcd::WatchHandler handler;
    handler.resync = [this, raw, prefix]() -> absl::StatusOr<int64_t> {
      absl::StatusOr<etcdserverpb::RangeResponse> range =
          client_->Range(PrefixRange(prefix, false), etcd::DeadlineIn(kResyncTimeout));
      if (!range.ok()) return range.status();
      WatchUpdate update;
      update.snapshot = true;
      update.revision = static_cast<uint64_t>(range->header().revision());
      for (Instance& instance : Decode(*range)) {
        if (raw->view.Matches(instance)) update.instances.push_back(std::move(instance));
      }
      raw->view.Reset(update.instances);
      Deliver(*raw, update);
      return range->header().revision();
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
      std::lock_guard lock(mu_);
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
      std::lock_guard lock(mu_);
      closed_ = true;
      for (auto& [id, sub] : subscriptions_) subs.push_back(sub);
      subscriptions_.clear();
      retired_.insert(retired_.end(), subs.begin(), subs.end());
    }
    for (auto& sub : subs) Silence(*sub);
    // Join every thread except the one Close may be called from (a callback's).
    std::vector<std::shared_ptr<Subscription>> reaped;
    {
      std::lock_guard lock(mu_);
      reaped = TakeReapableLocked();
    }
  }

 private:
  struct Subscription {
    Subscription(ServiceQuery q, WatchCallback cb)
        : query(std::move(q)), view(query.version), callback(std::move(cb)) {}
    ~Subscription() { watcher.reset(); }  // joins the thread first: it uses the rest

    const ServiceQuery query;
    client::SubscriptionView view;  // the watcher thread's only
    const WatchCallback callback;
    std::mutex callback_mu;  // held while `callback` runs
    bool silenced ABSL_GUARDED_BY(callback_mu) = false;
    std::unique_ptr<etcd::Watcher> watcher;  // set once, before the thread can call back
  };

  struct Known {
    std::string key;  // the instance's etcd key
    int64_t lease = 0;
  };

  absl::Status CheckOpen() {
    std::lock_guard lock(mu_);
    return closed_ ? Closed() : absl::OkStatus();
  }

  // Runs the callback unless the subscription was silenced.
  void Deliver(Subscription& sub, const WatchUpdate& update) {
    std::lock_guard lock(sub.callback_mu);
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
      sub.silenced = true;  // callback_mu is held by this very thread, in Deliver
      return;
    }
    std::lock_guard lock(sub.callback_mu);
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

  absl::StatusOr<Instance> RegisterOver(const Instance& instance, const std::string& key,
                                        const mvccpb::KeyValue& kv, Deadline deadline) {
    absl::StatusOr<Instance> existing = etcd::DecodeInstance(layout_, kv);
    if (existing.ok() && existing->SameSpec(instance)) {
      // The same registration: renew, write nothing.
      if (kv.lease() != 0) {
        absl::StatusOr<int64_t> ttl = client_->KeepAliveOnce(kv.lease(), deadline);
        if (!ttl.ok()) {
          // Expired this instant: the key goes with it; register anew.
          if (ttl.status().code() == absl::StatusCode::kNotFound) return absl::AbortedError("");
          return ttl.status();
        }
      }
      Remember(KeyOf(instance), key, kv.lease());
      return *std::move(existing);
    }
    const bool same_ttl = existing.ok() && existing->ttl_seconds == instance.ttl_seconds;
    int64_t lease = kv.lease();
    bool granted = false;
    if (instance.ttl_seconds == 0) {
      lease = 0;
    } else if (lease == 0 || !same_ttl) {
      absl::StatusOr<etcdserverpb::LeaseGrantResponse> grant =
          client_->LeaseGrant(instance.ttl_seconds, deadline);
      if (!grant.ok()) return grant.status();
      lease = grant->id();
      granted = true;
    }
    const uint64_t first_revision = existing.ok() ? existing->create_revision : 0;
    etcdserverpb::TxnRequest txn;
    *txn.add_compare() = ModEquals(key, kv.mod_revision());
    // Keep a create_revision carried over from another version's key.
    const bool carried = existing.ok() && first_revision != static_cast<uint64_t>(kv.create_revision());
    AddPut(txn, key, etcd::EncodeValue(instance, carried ? first_revision : 0), lease);
    absl::StatusOr<etcdserverpb::TxnResponse> done = client_->Txn(txn, deadline);
    if (!done.ok() || !done->succeeded()) {
      if (granted) (void)client_->LeaseRevoke(lease, deadline);
      if (!done.ok()) return done.status();
      return absl::AbortedError("");
    }
    if (kv.lease() != 0 && kv.lease() != lease) {
      (void)client_->LeaseRevoke(kv.lease(), deadline);
    } else if (lease != 0) {
      (void)client_->KeepAliveOnce(lease, deadline);  // a registration renews
    }
    Remember(KeyOf(instance), key, lease);
    Instance stored = instance;
    stored.create_revision = existing.ok() ? first_revision : static_cast<uint64_t>(kv.create_revision());
    stored.modify_revision = static_cast<uint64_t>(done->header().revision());
    return stored;
  }

  absl::StatusOr<Instance> RegisterNew(const Instance& instance, const std::string& key,
                                       Deadline deadline) {
    // Under another version? Then this registration moves it.
    absl::StatusOr<std::optional<mvccpb::KeyValue>> old = FindAnyVersion(KeyOf(instance), deadline);
    if (!old.ok()) return old.status();
    uint64_t first_revision = 0;
    if (old->has_value()) {
      etcdserverpb::RangeRequest get;
      get.set_key((*old)->key());
      absl::StatusOr<etcdserverpb::RangeResponse> previous = client_->Range(get, deadline);
      if (!previous.ok()) return previous.status();
      if (previous->kvs().empty()) return absl::AbortedError("");
      absl::StatusOr<Instance> decoded = etcd::DecodeInstance(layout_, previous->kvs(0));
      if (decoded.ok()) first_revision = decoded->create_revision;
      *old = previous->kvs(0);
    }
    int64_t lease = 0;
    if (instance.ttl_seconds > 0) {
      absl::StatusOr<etcdserverpb::LeaseGrantResponse> grant =
          client_->LeaseGrant(instance.ttl_seconds, deadline);
      if (!grant.ok()) return grant.status();
      lease = grant->id();
    }
    etcdserverpb::TxnRequest txn;
    *txn.add_compare() = Absent(key);
    if (old->has_value()) {
      *txn.add_compare() = ModEquals((*old)->key(), (*old)->mod_revision());
      AddDelete(txn, (*old)->key());
    }
    AddPut(txn, key, etcd::EncodeValue(instance, first_revision), lease);
    absl::StatusOr<etcdserverpb::TxnResponse> done = client_->Txn(txn, deadline);
    if (!done.ok() || !done->succeeded()) {
      if (lease != 0) (void)client_->LeaseRevoke(lease, deadline);
      if (!done.ok()) return done.status();
      return absl::AbortedError("");
    }
    if (old->has_value() && (*old)->lease() != 0) {
      (void)client_->LeaseRevoke((*old)->lease(), deadline);
    }
    Remember(KeyOf(instance), key, lease);
    Instance stored = instance;
    stored.modify_revision = static_cast<uint64_t>(done->header().revision());
    stored.create_revision = first_revision != 0 ? first_revision : stored.modify_revision;
    return stored;
  }

  // The key of instance `key.id` under any version of its service, if any.
  absl::StatusOr<std::optional<mvccpb::KeyValue>> FindAnyVersion(const InstanceKey& key,
                                                                 Deadline deadline) {
    absl::StatusOr<etcdserverpb::RangeResponse> range =
        client_->Range(PrefixRange(layout_.ServicePrefix(key.ns, key.service), true), deadline);
    if (!range.ok()) return range.status();
    for (const mvccpb::KeyValue& kv : range->kvs()) {
      std::optional<etcd::Layout::Parsed> parsed = layout_.Parse(kv.key());
      if (parsed.has_value() && !parsed->marker && parsed->id == key.id) return kv;
    }
    return std::optional<mvccpb::KeyValue>();
  }

  // The instance's key and metadata (no value): where this registry last
  // saw it, else found by a scan of its service. NotFound when not registered.
  absl::StatusOr<mvccpb::KeyValue> Locate(const InstanceKey& key, Deadline deadline) {
    if (std::optional<Known> known = Lookup(key); known.has_value()) {
      etcdserverpb::RangeRequest get;
      get.set_key(known->key);
      get.set_keys_only(true);
      absl::StatusOr<etcdserverpb::RangeResponse> range = client_->Range(get, deadline);
      if (!range.ok()) return range.status();
      if (!range->kvs().empty()) return range->kvs(0);
      Forget(key);
    }
    absl::StatusOr<std::optional<mvccpb::KeyValue>> found = FindAnyVersion(key, deadline);
    if (!found.ok()) return found.status();
    if (!found->has_value()) return NotRegistered(key);
    return **found;
  }

  std::vector<Instance> Decode(const etcdserverpb::RangeResponse& range) const {
    std::vector<Instance> instances;
    instances.reserve(range.kvs_size());
    for (const mvccpb::KeyValue& kv : range.kvs()) {
      absl::StatusOr<Instance> instance = etcd::DecodeInstance(layout_, kv);
      if (instance.ok()) instances.push_back(*std::move(instance));
    }
    std::sort(instances.begin(), instances.end(),
              [](const Instance& a, const Instance& b) { return a.id < b.id; });
    return instances;
  }

  void Remember(const InstanceKey& key, const std::string& etcd_key, int64_t lease) {
    std::lock_guard lock(known_mu_);
    known_[key] = Known{etcd_key, lease};
  }
  void Forget(const InstanceKey& key) {
    std::lock_guard lock(known_mu_);
    known_.erase(key);
  }
  std::optional<Known> Lookup(const InstanceKey& key) {
    std::lock_guard lock(known_mu_);
    auto it = known_.find(key);
    if (it == known_.end()) return std::nullopt;
    return it->second;
  }

  static thread_local const Subscription* tls_current_;

  const Limits limits_;
  const std::chrono::seconds ttl_override_;
  const etcd::Layout layout_;
  // Declared before the subscriptions so that it outlives their watchers.
  const std::unique_ptr<etcd::Client> client_;

  std::mutex known_mu_;
  // Where this registry last saw each instance: key and lease.
  absl::flat_hash_map<InstanceKey, Known> known_ ABSL_GUARDED_BY(known_mu_);

  std::mutex mu_;
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
