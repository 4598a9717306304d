// NewMemoryRegistry: an in-process Registry with musterd's semantics — one
// global revision, idempotent registration, TTL leases that lapse unless
// renewed, and subscriptions that get a snapshot and then every change in
// revision order.
//
// Leases: a min-heap holds one entry per lease, keyed by the deadline the
// lease had when the entry was pushed (as in src/catalog/lease_table.h). A
// heartbeat only moves the deadline stored with the instance; when an entry
// surfaces and its lease was renewed meanwhile, it is pushed again. So the
// sweeper, which wakes every `sweep_interval`, touches only leases that are
// due, and each lease costs one heap operation per TTL period however often
// it is renewed.
//
// Subscriptions: changes are decided under the registry lock and queued, in
// revision order, for one delivery thread that runs the callbacks with no
// registry lock held. Updates queued for the same subscription are delivered
// together (one WatchUpdate with several changes). One slow callback delays
// every subscription of the registry: callbacks must be quick.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <queue>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/subscription_view.h"
#include "core/limits.h"
#include "client/service_query.h"
#include "core/strings.h"
#include "core/validation.h"
#include "muster/registry.h"

namespace muster {
namespace {

using Clock = std::chrono::steady_clock;

absl::Status Closed() { return absl::FailedPreconditionError("the registry is closed"); }

// The registry whose delivery thread is the current thread, if any: lets
// Unsubscribe and Close called from a callback skip waiting for themselves.
thread_local const void* tls_delivering_for = nullptr;

class MemoryRegistry final : public Registry {
 public:
  explicit MemoryRegistry(const MemoryRegistryOptions& options)
      : sweep_interval_(std::max(options.sweep_interval, std::chrono::milliseconds(1))) {
    sweeper_ = std::thread([this] { SweepLoop(); });
    delivery_ = std::thread([this] { DeliveryLoop(); });
  }

  ~MemoryRegistry() override {
    Close();
    // Close from a callback could not join the delivery thread; do it now.
    // (Destroying the registry from one of its own callbacks is not allowed.)
    std::lock_guard join_lock(join_mu_);
    if (delivery_.joinable()) delivery_.join();
    if (sweeper_.joinable()) sweeper_.join();
  }

  absl::StatusOr<Instance> Register(const Instance& instance, const CallOptions&) override {
    if (auto s = ValidateInstance(instance, limits_); !s.ok()) return s;
    std::lock_guard lock(mu_);
    if (closed_) return Closed();
    ServiceInstances& service = services_[ServiceKey{instance.ns, instance.service}];
    auto it = service.find(instance.id);
    if (it != service.end() && it->second.instance->SameSpec(instance)) {
      StartLease(it->second, KeyOf(instance));
      return *it->second.instance;
    }
    if (it == service.end() && service.size() >= limits_.max_instances_per_service) {
      return absl::ResourceExhaustedError(StrCat("service ", instance.service,
                                                 " already has the maximum of ",
                                                 limits_.max_instances_per_service, " instances"));
    }
    auto stored = std::make_shared<Instance>(instance);
    const uint64_t revision = ++revision_;
    stored->health = Health::kPassing;
    stored->create_revision = it == service.end() ? revision : it->second.instance->create_revision;
    stored->modify_revision = revision;
    const ChangeType type = it == service.end() ? ChangeType::kRegistered : ChangeType::kUpdated;
    if (it == service.end()) it = service.emplace(instance.id, Record{}).first;
    it->second.instance = stored;
    StartLease(it->second, KeyOf(instance));
    PublishLocked(Change{revision, type, *stored});
    return *stored;
  }

  absl::Status Deregister(const InstanceKey& key, const CallOptions&) override {
    if (auto s = ValidateKey(key, limits_); !s.ok()) return s;
    std::lock_guard lock(mu_);
    if (closed_) return Closed();
    Record* record = FindLocked(key);
    if (record == nullptr) return NotRegistered(key);
    RemoveLocked(key, ChangeType::kDeregistered);
    return absl::OkStatus();
  }

  absl::Status UpdateService(const InstanceKey& key, const CallOptions&) override {
    if (auto s = ValidateKey(key, limits_); !s.ok()) return s;
    std::lock_guard lock(mu_);
    if (closed_) return Closed();
    Record* record = FindLocked(key);
    if (record == nullptr) return NotRegistered(key);
    // Only the deadline moves; the sweeper re-queues the heap entry when it
    // surfaces early. An instance whose lease lapsed but was not swept yet is
    // still registered and is renewed, as in musterd.
    if (record->lease != 0) record->deadline = Clock::now() + TtlOf(*record->instance);
    return absl::OkStatus();
  }

  absl::StatusOr<ServiceList> ListServices(const ServiceQuery& query,
                                           const CallOptions&) override {
    if (auto s = ValidateQuery(query, limits_); !s.ok()) return s;
    std::lock_guard lock(mu_);
    if (closed_) return Closed();
    return ServiceList{revision_, MatchingLocked(query)};
  }

  absl::StatusOr<SubscriptionId> Subscribe(const ServiceQuery& query,
                                           WatchCallback callback) override {
    if (auto s = ValidateQuery(query, limits_); !s.ok()) return s;
    if (!callback) return absl::InvalidArgumentError("a subscription needs a callback");
    std::lock_guard lock(mu_);
    if (closed_) return Closed();
    const SubscriptionId id = next_subscription_++;
    Subscription& sub = subscriptions_.emplace(id, Subscription{query, client::SubscriptionView(query.version)})
                            .first->second;
    by_service_[ServiceKey{query.ns, query.service}].insert(id);
    Item snapshot{id, /*snapshot=*/true, revision_, MatchingLocked(query), {}};
    sub.view.Reset(snapshot.instances);
    {
      std::lock_guard delivery_lock(delivery_mu_);
      callbacks_.emplace(id, std::make_shared<WatchCallback>(std::move(callback)));
      queue_.push_back(std::move(snapshot));
    }
    queue_cv_.notify_one();
    return id;
  }

  void Unsubscribe(SubscriptionId id) override {
    {
      std::lock_guard lock(mu_);
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
    std::unique_lock delivery_lock(delivery_mu_);
    callbacks_.erase(id);  // updates still queued for it are dropped
    // On the delivery thread (a callback unsubscribing another subscription)
    // no other callback can be running.
    if (tls_delivering_for == this) return;
    idle_cv_.wait(delivery_lock, [&] { return running_ != id; });
  }

  void Close() override {
    {
      std::lock_guard lock(mu_);
      if (!closed_) {
        closed_ = true;
        services_.clear();
        subscriptions_.clear();
        by_service_.clear();
        leases_ = {};
      }
    }
    sweep_cv_.notify_all();
    {
      std::lock_guard delivery_lock(delivery_mu_);
      stopping_ = true;
      callbacks_.clear();
      queue_.clear();
    }
    queue_cv_.notify_all();
    if (tls_delivering_for == this) return;  // the destructor joins
    std::lock_guard join_lock(join_mu_);
    if (delivery_.joinable()) delivery_.join();
    if (sweeper_.joinable()) sweeper_.join();
  }

 private:
  using ServiceKey = std::pair<std::string, std::string>;  // namespace, service
  struct Record {
    std::shared_ptr<const Instance> instance;
    uint64_t lease = 0;  // 0: no lease (ttl_seconds == 0)
    Clock::time_point deadline;
  };
  using ServiceInstances = std::map<std::string, Record>;  // by id, so lists come sorted
  struct LeaseEntry {
    Clock::time_point deadline;  // the lease's deadline when the entry was pushed
    uint64_t lease;
    InstanceKey key;
    bool operator>(const LeaseEntry& o) const { return deadline > o.deadline; }
  };
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

  static std::chrono::seconds TtlOf(const Instance& instance) {
    return std::chrono::seconds(instance.ttl_seconds);
  }

  static absl::Status NotRegistered(const InstanceKey& key) {
    return absl::NotFoundError(
        StrCat("instance ", key.id, " of service ", key.service, " is not registered"));
  }

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
      if (query.version.empty() || record.instance->version == query.version) {
        out.push_back(*record.instance);
      }
    }
    return out;
  }

  // Gives the record a full lease of its instance's TTL from now (a new lease
  // when it had none), or none when the TTL is 0.
  void StartLease(Record& record, const InstanceKey& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const auto ttl = TtlOf(*record.instance);
    if (ttl.count() == 0) {
      record.lease = 0;  // its heap entry is dropped when it surfaces
      return;
    }
    const auto deadline = Clock::now() + ttl;
    // A new lease when there was none or the TTL may have shrunk below the
    // pending heap entry; otherwise the renewal only moves the deadline.
    if (record.lease == 0 || deadline < record.deadline) {
      record.lease = next_lease_++;
      leases_.push(LeaseEntry{deadline, record.lease, key});
    }
    record.deadline = deadline;
  }

  // Removes an instance (deregistered or expired) and publishes the change.
  void RemoveLocked(const InstanceKey& key, ChangeType type) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto s = services_.find(ServiceKey{key.ns, key.service});
    auto i = s->second.find(key.id);
    Instance last = *i->second.instance;
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
      std::lock_guard delivery_lock(delivery_mu_);
      for (Item& item : items) queue_.push_back(std::move(item));
    }
    queue_cv_.notify_one();
  }

  void SweepLoop() {
    std::unique_lock lock(mu_);
    while (!closed_) {
      sweep_cv_.wait_for(lock, sweep_interval_, [&] { return closed_; });
      if (closed_) break;
      const auto now = Clock::now();
      while (!leases_.empty() && leases_.top().deadline <= now) {
        LeaseEntry entry = leases_.top();
        leases_.pop();
        Record* record = FindLocked(entry.key);
        if (record == nullptr || record->lease != entry.lease) continue;  // gone or replaced
        if (record->deadline > now) {
          // Renewed since the entry was pushed: wait for the new deadline.
          entry.deadline = record->deadline;
          leases_.push(std::move(entry));
          continue;
        }
        RemoveLocked(entry.key, ChangeType::kExpired);
      }
    }
  }

  void DeliveryLoop() {
    tls_delivering_for = this;
    std::unique_lock lock(delivery_mu_);
    while (true) {
      queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
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
        lock.unlock();
        (*callback)(update);
        lock.lock();
        running_ = 0;
        idle_cv_.notify_all();
      }
    }
  }

  // Constant after construction.
  const Limits limits_;
  const std::chrono::milliseconds sweep_interval_;

  // The registry's state.
  std::mutex mu_;
  std::condition_variable sweep_cv_;  // wakes the sweeper on Close
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t revision_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_lease_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<ServiceKey, ServiceInstances> services_ ABSL_GUARDED_BY(mu_);
  std::priority_queue<LeaseEntry, std::vector<LeaseEntry>, std::greater<LeaseEntry>> leases_
      ABSL_GUARDED_BY(mu_);
  SubscriptionId next_subscription_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<SubscriptionId, Subscription> subscriptions_ ABSL_GUARDED_BY(mu_);
  std::map<ServiceKey, std::set<SubscriptionId>> by_service_ ABSL_GUARDED_BY(mu_);

  // The delivery queue, taken after mu_ when both are held.
  std::mutex delivery_mu_ ABSL_ACQUIRED_AFTER(mu_);
  std::condition_variable queue_cv_;  // something queued, or stopping
  std::condition_variable idle_cv_;   // running_ changed
  std::deque<Item> queue_ ABSL_GUARDED_BY(delivery_mu_);
  std::map<SubscriptionId, std::shared_ptr<WatchCallback>> callbacks_ ABSL_GUARDED_BY(delivery_mu_);
  SubscriptionId running_ ABSL_GUARDED_BY(delivery_mu_) = 0;  // whose callback runs now
  bool stopping_ ABSL_GUARDED_BY(delivery_mu_) = false;

  // Serializes joining the threads (Close may run on several threads).
  std::mutex join_mu_;
  std::thread sweeper_ ABSL_GUARDED_BY(join_mu_);
  std::thread delivery_ ABSL_GUARDED_BY(join_mu_);
};

}  // namespace

std::unique_ptr<Registry> NewMemoryRegistry(const MemoryRegistryOptions& options) {
  return std::make_unique<MemoryRegistry>(options);
}

}  // namespace muster
