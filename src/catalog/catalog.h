// The registry state machine: instances by namespace and service, their
// leases, the revision counter and the event history.
//
// Reads (List, Services, Heartbeat) are served from memory under a shared
// lock. Writes (register, deregister, lease expiry) go through one committer
// thread that takes every write queued so far as a batch, decides each against
// the current state, makes the batch durable through the Journal in one sync
// (group commit: concurrent writers share the fsync), and only then applies it
// to memory, publishes its events and completes the callers. So nothing a
// reader or watcher sees can be lost by a crash, and revisions are assigned in
// exactly the order changes become visible.
//
// Cluster mode (a ClusterStore given): the catalog decides and stores
// nothing itself. Writes and heartbeats go to the cluster store (etcd); the
// state is a view fed by the store's feed of every change, with the store's
// revisions. A write is answered once this node's view has applied it (or
// after kClusterApplyWait if the feed lags), so a client reads its own writes
// from the node it wrote to. No lease table and no expiry sweep run: the store
// expires leases. catalog_cluster.cc has this part.
//
// Thread-safe. Write callbacks run on the committer thread (a cluster store's
// thread in cluster mode): they must be quick (post the answer elsewhere).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "catalog/clock.h"
#include "catalog/cluster_store.h"
#include "catalog/journal.h"
#include "catalog/lease_table.h"
#include "catalog/self_preservation.h"
#include "catalog/watch_hub.h"
#include "muster/instance.h"
#include "core/limits.h"

namespace muster {

struct CatalogOptions {
  Limits limits;
  size_t history = 65536;  // events kept for watch resume
  // Bytes of events kept for watch resume (WatchHub: whichever of the two
  // bounds is reached first compacts).
  size_t history_bytes = size_t{256} << 20;
  const Clock* clock = SteadyClock::Get();
  // Upper bound on how long a lapsed lease waits for the sweep.
  std::chrono::milliseconds sweep_interval{100};
  // Most writes taken into one batch (one fsync).
  size_t max_batch = 4096;
  // Embedded mode: stop expiring when leases lapse en masse
  // (self_preservation.h). In cluster mode etcd expires leases.
  SelfPreservationOptions self_preservation;
};

struct ListFilter {
  std::string version;  // empty: any
  bool healthy_only = false;
  std::vector<std::pair<std::string, std::string>> metadata;  // all must match
};

struct ServiceSummary {
  std::string name;
  size_t instances = 0;
  size_t healthy = 0;
};

class Catalog {
 public:
  // `journal` may be null (memory only); it must outlive the catalog.
  Catalog(CatalogOptions options, Journal* journal);
  // Cluster mode; `cluster` must outlive the catalog.
  Catalog(CatalogOptions options, ClusterStore* cluster);
  ~Catalog();
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  // Loads the journal's snapshot (every lease restarts with a full TTL) and
  // starts the committer; in cluster mode, starts following the cluster store
  // and returns once the view holds its state. Call once, before anything else.
  absl::Status Start();
  // Finishes every write already queued, then stops; later writes fail with
  // Unavailable.
  void Stop();

  struct WriteResult {
    std::shared_ptr<const Instance> instance;  // as stored (last state for a deregister)
    bool created = false;                      // register: a new instance
    uint64_t revision = 0;                     // registry revision after the write
  };
  using WriteCallback = absl::AnyInvocable<void(absl::StatusOr<WriteResult>) &&>;

  // Registers or updates a validated instance; `done` runs once it is durable.
  // Registering an identical instance again only renews its lease.
  // ResourceExhausted when the service is full: it has the most instances, or
  // the instance's bytes would pass limits.max_service_bytes (or
  // limits.max_catalog_bytes for the whole registry).
  void Register(Instance instance, WriteCallback done);
  // NotFound when unknown.
  void Deregister(InstanceKey key, WriteCallback done);
  // Records a new state of one active check (the health checker's write):
  // `check` carries the spec it was run with and its new status and output.
  // Publishes a kHealth event and recomputes the instance's health. NotFound
  // when the instance or the check (with that spec) is gone, e.g. because a
  // re-registration changed it meanwhile; a write that changes nothing
  // succeeds without an event.
  void SetCheckState(InstanceKey key, Check check, WriteCallback done);

  // Renews the instance's lease. NotFound when the instance is unknown or its
  // lease has lapsed. Returns the instance's TTL. Embedded mode only (in
  // cluster mode: FailedPrecondition; use the asynchronous form).
  absl::StatusOr<uint32_t> Heartbeat(const InstanceKey& key);
  using HeartbeatCallback = absl::AnyInvocable<void(absl::StatusOr<uint32_t>) &&>;
  // Either mode: `done` runs on this thread (embedded) or once the cluster
  // store renewed the lease (on a store thread).
  void Heartbeat(InstanceKey key, HeartbeatCallback done);

  bool clustered() const { return cluster_ != nullptr; }
  // Whether self-preservation holds expiry back now (embedded mode).
  bool self_preserving() const { return preservation_.active(); }
  // Embedded mode: whether the store's last write failed (a full disk, say);
  // false again after the next write that succeeds.
  bool store_write_failing() const { return store_write_failing_.load(std::memory_order_relaxed); }
  // Cluster mode: this node's part in the leader election; embedded: none.
  ClusterStore::Role cluster_role() const {
    return cluster_ != nullptr ? cluster_->role() : ClusterStore::Role{};
  }
  // Cluster mode: whether the view follows the store now (false while the
  // store's feed is interrupted: answers may be stale). Always true embedded.
  bool following() const;

  // How long a cluster-mode write waits for this node's view to apply it
  // before it is answered anyway (it is durable in the store by then).
  static constexpr std::chrono::seconds kClusterApplyWait{5};

  struct ListResult {
    uint64_t revision = 0;          // registry revision the answer reflects
    uint64_t service_revision = 0;  // revision of the last change to this service
    std::vector<std::shared_ptr<const Instance>> instances;  // sorted by id
  };
  ListResult List(std::string_view ns, std::string_view service, const ListFilter& filter) const;

  // Revision of the last change to the service (0 if never changed).
  uint64_t ServiceRevision(std::string_view ns, std::string_view service) const;

  // The registry revision and the service's, read together: a list of the
  // service made when its revision was `service` is what it holds at
  // `registry` too.
  struct Revisions {
    uint64_t registry = 0;
    uint64_t service = 0;
  };
  Revisions RevisionsOf(std::string_view ns, std::string_view service) const;

  // Services with at least one instance, sorted by name.
  std::vector<ServiceSummary> Services(std::string_view ns, uint64_t* revision) const;

  uint64_t revision() const;
  size_t instance_count() const;
  // The memory the instances hold (core/footprint.h), all of them.
  size_t instance_bytes() const;
  // The instance now, or null.
  std::shared_ptr<const Instance> Get(const InstanceKey& key) const;
  // Every instance now, in no particular order.
  std::vector<std::shared_ptr<const Instance>> AllInstances() const;

  // Told of every batch of changes once it is visible, in revision order,
  // and with `reset` (and no events) when the whole state was replaced (a
  // cluster-mode resync: read AllInstances again). Runs on the thread that
  // applied the changes, under a lock that SetChangeListener also takes (so
  // once it returns the old listener is never called again): it must be
  // quick and must not call SetChangeListener. Null clears it.
  using ChangeListener = std::function<void(const std::vector<Event>& events, bool reset)>;
  void SetChangeListener(ChangeListener listener);
  WatchHub& hub() { return hub_; }
  const LeaseTable& leases() const { return leases_; }

  // Wakes the committer to look for lapsed leases now (tests with a ManualClock).
  void SweepNow();

 private:
  struct Record {
    std::shared_ptr<const Instance> instance;
    LeaseId lease = 0;  // 0: no lease
    size_t bytes = 0;   // ApproximateBytes(*instance)
  };
  struct ServiceKey {
    std::string ns;
    std::string service;
  };
  // Looks a service up without copying its names (reads are the hot path).
  struct ServiceKeyRef {
    std::string_view ns;
    std::string_view service;
    ServiceKeyRef(std::string_view n, std::string_view s) : ns(n), service(s) {}
    ServiceKeyRef(const ServiceKey& k) : ns(k.ns), service(k.service) {}  // NOLINT: implicit on purpose
  };
  struct ServiceKeyHash {
    using is_transparent = void;
    size_t operator()(ServiceKeyRef k) const { return absl::HashOf(k.ns, k.service); }
  };
  struct ServiceKeyEq {
    using is_transparent = void;
    bool operator()(ServiceKeyRef a, ServiceKeyRef b) const {
      return a.ns == b.ns && a.service == b.service;
    }
  };
  struct ServiceState {
    absl::btree_map<std::string, Record> instances;
    uint64_t last_change = 0;  // kept after the last instance leaves, for blocking queries
    size_t bytes = 0;          // sum of the records' bytes
  };
  // A queued write.
  struct Op {
    enum Kind { kRegister, kDeregister, kExpire, kCheck } kind;
    InstanceKey key;
    std::shared_ptr<const Instance> instance;  // kRegister
    std::shared_ptr<const Check> check;         // kCheck
    LeaseId lease = 0;                         // kExpire: the lease that lapsed
    WriteCallback done;                        // null for kExpire
  };
  // What deciding an op produced.
  struct Outcome {
    absl::Status status;
    bool changes = false;  // writes a mutation and an event
    bool renew_only = false;
    ChangeType type = ChangeType::kRegistered;
    std::shared_ptr<const Instance> instance;
    uint64_t revision = 0;
    std::string check;  // kHealth events
  };

  // Cluster mode (catalog_cluster.cc).
  class ClusterFeed;
  absl::Status StartClustered();
  void StopClustered();
  void ClusterWrite(bool is_register, Instance instance, InstanceKey key, WriteCallback done);
  void ClusterSetCheckState(InstanceKey key, Check check, WriteCallback done);
  // The cluster store's answer to a write, passed to `done` once this node's
  // view has applied it (or kClusterApplyWait passed).
  ClusterStore::WriteDone AnswerWhenApplied(WriteCallback done);
  // Runs `then` once the view has applied `revision` (or kClusterApplyWait passed).
  void WhenApplied(uint64_t revision, absl::AnyInvocable<void() &&> then);
  // Marks `revision` applied and runs the waiters it satisfies.
  void Applied(uint64_t revision);
  void ResetView(std::vector<Instance> instances, uint64_t revision);
  void ApplyEvents(std::vector<Event> events, uint64_t revision);
  void ApplyEventLocked(const Event& event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WaiterLoop();

  void Enqueue(Op op);
  void CommitterLoop();
  // Decides, commits and applies one batch.
  void RunBatch(std::vector<Op> batch);
  const Record* FindLocked(const InstanceKey& key) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Stores `instance` as `id` of `service`, replacing any, and keeps the
  // instance count and byte sums; returns its record (the lease unchanged).
  Record& PutLocked(ServiceState& service, const std::string& id,
                    std::shared_ptr<const Instance> instance) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes `id` from `service` the same way; false when it was not there.
  bool EraseLocked(ServiceState& service, const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // OK when an instance of `added` bytes more (negative: fewer) fits the
  // per-service and whole-registry limits, given `service_bytes` and
  // `total_bytes` now; else the ResourceExhausted error that refuses it.
  absl::Status CheckBytesLimit(std::string_view service, int64_t added, int64_t service_bytes,
                               int64_t total_bytes) const;
  void ApplyLocked(const Op& op, const Outcome& outcome) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Appends `events` to the watch hub and tells the change listener; returns
  // the watchers to wake (WatchHub::Wake). With `reset`, wakes every watcher
  // at once instead.
  WatchHub::Wakeups PublishChanges(std::vector<Event> events, bool reset);
  static bool Passes(const Instance& instance, const ListFilter& filter);

  // Constant after construction.
  const CatalogOptions options_;
  Journal* const journal_;
  ClusterStore* const cluster_ = nullptr;

  LeaseTable leases_;
  SelfPreservation preservation_;  // the committer thread's
  std::atomic<bool> store_write_failing_{false};  // written by the committer thread
  WatchHub hub_;

  // The state below is written only by the committer thread, under mu_.
  mutable std::shared_mutex mu_;
  absl::flat_hash_map<ServiceKey, ServiceState, ServiceKeyHash, ServiceKeyEq> services_
      ABSL_GUARDED_BY(mu_);
  uint64_t revision_ ABSL_GUARDED_BY(mu_) = 0;
  size_t instance_count_ ABSL_GUARDED_BY(mu_) = 0;
  size_t instance_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // sum over services_ of bytes

  // Held while the change listener runs.
  std::mutex listener_mu_;
  ChangeListener listener_ ABSL_GUARDED_BY(listener_mu_);

  // The write queue.
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::vector<Op> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;
  bool sweep_now_ ABSL_GUARDED_BY(queue_mu_) = false;
  bool started_ ABSL_GUARDED_BY(queue_mu_) = false;
  std::thread committer_;
  // The committer thread's: lapsed leases whose expiry the store failed to
  // write, tried again with the next batch.
  std::vector<Op> retry_;

  // Cluster mode: writes waiting for the view to apply their revision.
  struct Waiter {
    uint64_t revision;
    std::chrono::steady_clock::time_point since;
    absl::AnyInvocable<void() &&> then;
  };
  std::shared_ptr<ClusterFeed> feed_;  // shared_ptr: ClusterFeed is complete only in catalog_cluster.cc
  mutable std::mutex waiters_mu_;
  std::condition_variable waiters_cv_;
  uint64_t applied_ ABSL_GUARDED_BY(waiters_mu_) = 0;  // the view's revision, as waiters see it
  std::vector<Waiter> waiters_ ABSL_GUARDED_BY(waiters_mu_);
  bool following_ ABSL_GUARDED_BY(waiters_mu_) = true;
  bool waiters_stopping_ ABSL_GUARDED_BY(waiters_mu_) = false;
  std::thread waiter_thread_;  // answers waiters whose wait ran out
};

}  // namespace muster
