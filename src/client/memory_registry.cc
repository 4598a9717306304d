// NewMemoryRegistry: an in-process Registry with musterd's semantics — one
// global revision, idempotent registration, TTL leases that lapse unless
// renewed, check states kept as musterd keeps them, and subscriptions that
// get a snapshot and then every change in revision order.
//
// It is built on the registry kernel that musterd uses too: the registration
// decision (core/registration.h) decides new / update / renew-only and the
// stored instance (check states adopted, create_revision kept); the lease
// table (core/lease_table.h) holds the TTL leases; time comes from the
// injectable clock (muster/clock.h). There is no health checker here: an
// active check keeps the state the registration gave it (critical until a
// checker reports, as musterd stores it), a ttl check is passing.
//
// Sweeping: a thread wakes every `sweep_interval` of the clock (so a
// ManualClock's Advance wakes it) and expires the lapsed leases; tests can
// sweep synchronously instead (client/memory_registry.h).
//
// Subscriptions: changes are decided under the registry lock and queued, in
// revision order, for one delivery thread that runs the callbacks with no
// registry lock held. Updates queued for the same subscription are delivered
// together (one WatchUpdate with several changes). One slow callback delays
// every subscription of the registry: callbacks must be quick.
#include "client/memory_registry.h"

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/subscription_view.h"
#include "client/service_query.h"
#include "core/lease_table.h"
#include "core/limits.h"
#include "core/mutex.h"
#include "core/registration.h"
#include "core/strings.h"
#include "core/validation.h"
#include "muster/registry.h"

namespace muster {
namespace {

absl::Status Closed() { return absl::FailedPreconditionError("the registry is closed"); }

// The registry whose delivery thread is the current thread, if any: lets
// Unsubscribe and Close called from a callback skip waiting for themselves.
thread_local const void* tls_delivering_for = nullptr;

class MemoryRegistry final : public Registry {
 public:
  explicit MemoryRegistry(const MemoryRegistryOptions& options)
      : clock_(options.clock != nullptr ? options.clock : SteadyClock::Get()),
        sweep_interval_(std::max(options.sweep_interval, std::chrono::milliseconds(1))),
        leases_(clock_) {
    sweeper_ = std::thread([this, first = clock_->Now() + sweep_interval_] { SweepLoop(first); });
    delivery_ = std::thread([this] { DeliveryLoop(); });
  }

  ~MemoryRegistry() override {
    Close();
    // Close from a callback could not join the delivery thread; do it now.
    // (Destroying the registry from one of its own callbacks is not allowed.)
    MutexLock join_lock(join_mu_);
    if (delivery_.joinable()) delivery_.join();
    if (sweeper_.joinable()) sweeper_.join();
  }

  absl::StatusOr<Instance> Register(const Instance& instance, const CallOptions&) override {
    if (auto s = ValidateInstance(instance, limits_); !s.ok()) return s;
    MutexLock lock(mu_);
    if (closed_) return Closed();
    ServiceInstances& service = services_[ServiceKey{instance.ns, instance.service}];
    auto it = service.find(instance.id);
    Registration decision =
        DecideRegistration(it == service.end() ? nullptr : it->second.instance.get(), instance);
    if (decision.kind == RegistrationKind::kRenewOnly) {
      KeepLease(it->second, instance);
      return *it->second.instance;
    }
    if (decision.kind == RegistrationKind::kCreate &&
        service.size() >= limits_.max_instances_per_service) {
      return absl::ResourceExhaustedError(StrCat("service ", instance.service,
                                                 " already has the maximum of ",
                                                 limits_.max_instances_per_service, " instances"));
    }
    const uint64_t revision = ++revision_;
    decision.Stamp(revision);
    auto stored = std::make_shared<const Instance>(*std::move(decision.stored));
    const ChangeType type = decision.kind == RegistrationKind::kCreate ? ChangeType::kRegistered
                                                                        : ChangeType::kUpdated;
    if (it == service.end()) it = service.emplace(instance.id, Record{}).first;
    it->second.instance = stored;
    KeepLease(it->second, instance);
    PublishLocked(Change{revision, type, *stored});
    return *stored;
  }

  absl::Status Deregister(const InstanceKey& key, const CallOptions&) override {
    if (auto s = ValidateKey(key, limits_); !s.ok()) return s;
    MutexLock lock(mu_);
    if (closed_) return Closed();
    Record* record = FindLocked(key);
    if (record == nullptr) return NotRegisteredError(key);
    RemoveLocked(key, ChangeType::kDeregistered);
    return absl::OkStatus();
  }

  absl::Status UpdateService(const InstanceKey& key, const CallOptions&) override {
    if (auto s = ValidateKey(key, limits_); !s.ok()) return s;
    MutexLock lock(mu_);
    if (closed_) return Closed();
    Record* record = FindLocked(key);
    if (record == nullptr) return NotRegisteredError(key);
    // An instance whose lease lapsed but was not swept yet is still
    // registered and is renewed, as in musterd (a lease leaves the table only
    // when the sweep that expires its instance takes it).
    if (record->lease != 0) leases_.Renew(record->lease);
    return absl::OkStatus();
  }

  absl::StatusOr<ServiceList> ListServices(const ServiceQuery& query,
                                           const CallOptions&) override {
    if (auto s = ValidateQuery(query, limits_); !s.ok()) return s;
    MutexLock lock(mu_);
    if (closed_) return Closed();
    return ServiceList{revision_, MatchingLocked(query)};
  }

  absl::StatusOr<SubscriptionId> Subscribe(const ServiceQuery& query,
                                           WatchCallback callback) override {
    if (auto s = ValidateQuery(query, limits_); !s.ok()) return s;
    if (!callback) return absl::InvalidArgumentError("a subscription needs a callback");
    MutexLock lock(mu_);
    if (closed_) return Closed();
    const SubscriptionId id = next_subscription_++;
    Subscription& sub = subscriptions_.emplace(id, Subscription{query, client::SubscriptionView(query)})
                            .first->second;
    by_service_[ServiceKey{query.ns, query.service}].insert(id);
    Item snapshot{id, /*snapshot=*/true, revision_, MatchingLocked(query), {}};
    sub.view.Reset(snapshot.instances);
    {
      MutexLock delivery_lock(delivery_mu_);
      callbacks_.emplace(id, std::make_shared<WatchCallback>(std::move(callback)));
      queue_.push_back(std::move(snapshot));
    }
    queue_cv_.NotifyOne();
    return id;
  }

  void Unsubscribe(SubscriptionId id) override {
    {
      MutexLock lock(mu_);
      auto it = subscriptions_.find(id);
      if (it != subscriptions_.end()) {
        const ServiceQuery& query = it->second.query;
        auto s = by_service_.find(ServiceKey{query.ns, query.service});
        if (s != by_service_.end()) {
          s->second.erase(id);
          if (s->second.empty()) by_service_.erase(s);
        }
        subscriptions_.erase(it);
      }
    }
    MutexLock delivery_lock(delivery_mu_);
    callbacks_.erase(id);  // updates still queued for it are dropped
    // On the delivery thread (a callback unsubscribing another subscription)
    // no other callback can be running.
    if (tls_delivering_for == this) return;
    while (running_ == id) idle_cv_.Wait(delivery_mu_);
  }

  void Close() override {
    {
      MutexLock lock(mu_);
      if (!closed_) {
        closed_ = true;
        services_.clear();
        subscriptions_.clear();
        by_service_.clear();
      }
    }
    sweep_cv_.NotifyAll();
    {
      MutexLock delivery_lock(delivery_mu_);
      stopping_ = true;
      callbacks_.clear();
      queue_.clear();
    }
    queue_cv_.NotifyAll();
    if (tls_delivering_for == this) return;  // the destructor joins
    MutexLock join_lock(join_mu_);
    if (delivery_.joinable()) delivery_.join();
    if (sweeper_.joinable()) sweeper_.join();
  }

  // Expires every instance whose lease has lapsed by the clock; returns how
  // many. What the sweeper does, on the caller's thread (SweepMemoryRegistryNow).
  size_t Sweep() {
    MutexLock lock(mu_);
    return closed_ ? 0 : SweepLocked();
  }

 private:
  using ServiceKey = std::pair<std::string, std::string>;  // namespace, service
  struct Record {
    std::shared_ptr<const Instance> instance;
    LeaseId lease = 0;  // 0: no lease (ttl_seconds == 0)
  };
  using ServiceInstances = std::map<std::string, Record>;  // by id, so lists come sorted
  struct Subscription {
    ServiceQuery query;
    client::SubscriptionView view;
  };
  // One queued piece of a WatchUpdate for one subscription.
  struct Item {
    SubscriptionId id = 0;
    bool snapshot = false;
    uint64_t revision = 0;
    std::vector<Instance> instances;  // snapshot
    Change change;                    // otherwise
  };

  Record* FindLocked(const InstanceKey& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto s = services_.find(ServiceKey{key.ns, key.service});
    if (s == services_.end()) return nullptr;
    auto i = s->second.find(key.id);
    return i == s->second.end() ? nullptr : &i->second;
  }

  std::vector<Instance> MatchingLocked(const ServiceQuery& query)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<Instance> out;
    auto s = services_.find(ServiceKey{query.ns, query.service});
    if (s == services_.end()) return out;
    for (const auto& [id, record] : s->second) {
      if (QueryMatches(query, *record.instance)) {
        out.push_back(*record.instance);
      }
    }
    return out;
  }

  // Gives the record a full lease of its instance's TTL from now (a new lease
  // when it had none), or none when the TTL is 0.
  void KeepLease(Record& record, const Instance& instance) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    record.lease =
        leases_.Keep(record.lease, KeyOf(instance), std::chrono::seconds(instance.ttl_seconds));
  }

  // Removes an instance (deregistered or expired) and publishes the change.
  void RemoveLocked(const InstanceKey& key, ChangeType type) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto s = services_.find(ServiceKey{key.ns, key.service});
    auto i = s->second.find(key.id);
    Instance last = *i->second.instance;
    if (i->second.lease != 0 && type != ChangeType::kExpired) leases_.Revoke(i->second.lease);
    s->second.erase(i);
    if (s->second.empty()) services_.erase(s);
    PublishLocked(Change{++revision_, type, std::move(last)});
  }

  // Queues a change for every subscription of its service, as each sees it.
  void PublishLocked(const Change& change) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto s = by_service_.find(ServiceKey{change.instance.ns, change.instance.service});
    if (s == by_service_.end()) return;
    std::vector<Item> items;
    for (SubscriptionId id : s->second) {
      std::optional<Change> seen = subscriptions_.at(id).view.Apply(change);
      if (seen) items.push_back(Item{id, false, change.revision, {}, *std::move(seen)});
    }
    if (items.empty()) return;
    {
      MutexLock delivery_lock(delivery_mu_);
      for (Item& item : items) queue_.push_back(std::move(item));
    }
    queue_cv_.NotifyOne();
  }

  // Sweeps every sweep_interval_ of the clock, the first one interval after
  // `first` (taken at construction, so that a ManualClock advanced before
  // this thread gets to run still finds the first sweep due).
  void SweepLoop(Clock::time_point first) {
    MutexLock lock(mu_);
    Clock::time_point next = first;
    while (true) {
      while (!closed_ && clock_->Now() < next) clock_->WaitUntil(mu_, sweep_cv_, next);
      if (closed_) break;
      // Read before sweeping: time that passes after this read is either
      // covered by the sweep or counts toward the next one.
      next = clock_->Now() + sweep_interval_;
      SweepLocked();
    }
  }

  size_t SweepLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    size_t expired = 0;
    for (;;) {
      std::vector<LeaseTable::Expired> lapsed = leases_.TakeExpired(kSweepBatch);
      if (lapsed.empty()) return expired;
      for (const LeaseTable::Expired& lease : lapsed) {
        Record* record = FindLocked(lease.key);
        if (record == nullptr || record->lease != lease.id) continue;  // not its lease
        RemoveLocked(lease.key, ChangeType::kExpired);
        ++expired;
      }
    }
  }

  void DeliveryLoop() {
    tls_delivering_for = this;
    MutexLock lock(delivery_mu_);
    while (true) {
      while (!stopping_ && queue_.empty()) queue_cv_.Wait(delivery_mu_);
      if (stopping_) break;
      std::deque<Item> items;
      items.swap(queue_);
      // Merge consecutive changes of a subscription into one update, keeping
      // each subscription's order.
      std::vector<std::pair<SubscriptionId, WatchUpdate>> updates;
      std::map<SubscriptionId, size_t> open;  // subscription -> its change update in `updates`
      for (Item& item : items) {
        if (item.snapshot) {
          WatchUpdate update;
          update.snapshot = true;
          update.revision = item.revision;
          update.instances = std::move(item.instances);
          updates.emplace_back(item.id, std::move(update));
          open.erase(item.id);
          continue;
        }
        auto [it, inserted] = open.try_emplace(item.id, updates.size());
        if (inserted) updates.emplace_back(item.id, WatchUpdate{});
        WatchUpdate& update = updates[it->second].second;
        update.revision = item.revision;
        update.changes.push_back(std::move(item.change));
      }
      for (auto& [id, update] : updates) {
        if (stopping_) break;
        auto cb = callbacks_.find(id);
        if (cb == callbacks_.end()) continue;  // unsubscribed meanwhile
        std::shared_ptr<WatchCallback> callback = cb->second;
        running_ = id;
        lock.Unlock();
        (*callback)(update);
        lock.Lock();
        running_ = 0;
        idle_cv_.NotifyAll();
      }
    }
  }

  // Leases taken from the table at a time while sweeping.
  static constexpr size_t kSweepBatch = 1024;

  // Constant after construction.
  const Limits limits_;
  const Clock* const clock_;
  const std::chrono::milliseconds sweep_interval_;

  // The registry's state.
  Mutex mu_;
  CondVar sweep_cv_;  // wakes the sweeper on Close (and the clock's Advance)
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t revision_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<ServiceKey, ServiceInstances> services_ ABSL_GUARDED_BY(mu_);
  // The leases of the instances in services_ (thread-safe by itself; taken
  // and changed under mu_ so that a lease and its instance go together).
  LeaseTable leases_;
  SubscriptionId next_subscription_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<SubscriptionId, Subscription> subscriptions_ ABSL_GUARDED_BY(mu_);
  std::map<ServiceKey, std::set<SubscriptionId>> by_service_ ABSL_GUARDED_BY(mu_);

  // The delivery queue, taken after mu_ when both are held.
  Mutex delivery_mu_ ABSL_ACQUIRED_AFTER(mu_);
  CondVar queue_cv_;  // something queued, or stopping
  CondVar idle_cv_;   // running_ changed
  std::deque<Item> queue_ ABSL_GUARDED_BY(delivery_mu_);
  std::map<SubscriptionId, std::shared_ptr<WatchCallback>> callbacks_ ABSL_GUARDED_BY(delivery_mu_);
  SubscriptionId running_ ABSL_GUARDED_BY(delivery_mu_) = 0;  // whose callback runs now
  bool stopping_ ABSL_GUARDED_BY(delivery_mu_) = false;

  // Serializes joining the threads (Close may run on several threads).
  Mutex join_mu_;
  std::thread sweeper_ ABSL_GUARDED_BY(join_mu_);
  std::thread delivery_ ABSL_GUARDED_BY(join_mu_);
};

}  // namespace

std::unique_ptr<Registry> NewMemoryRegistry(const MemoryRegistryOptions& options) {
  return std::make_unique<MemoryRegistry>(options);
}

namespace client {

size_t SweepMemoryRegistryNow(Registry& registry) {
  auto* memory = dynamic_cast<MemoryRegistry*>(&registry);
  return memory != nullptr ? memory->Sweep() : 0;
}

}  // namespace client

}  // namespace muster
