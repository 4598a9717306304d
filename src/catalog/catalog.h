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
// Thread-safe. Write callbacks run on the committer thread: they must be
// quick (post the answer elsewhere).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "catalog/clock.h"
#include "catalog/journal.h"
#include "catalog/lease_table.h"
#include "catalog/watch_hub.h"
#include "muster/instance.h"
#include "core/limits.h"

namespace muster {

struct CatalogOptions {
  Limits limits;
  size_t history = 65536;  // events kept for watch resume
  const Clock* clock = SteadyClock::Get();
  // Upper bound on how long a lapsed lease waits for the sweep.
  std::chrono::milliseconds sweep_interval{100};
  // Most writes taken into one batch (one fsync).
  size_t max_batch = 4096;
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
  ~Catalog();
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  // Loads the journal's snapshot (every lease restarts with a full TTL) and
  // starts the committer. Call once, before anything else.
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
  // ResourceExhausted when the service is full.
  void Register(Instance instance, WriteCallback done);
  // NotFound when unknown.
  void Deregister(InstanceKey key, WriteCallback done);

  // Renews the instance's lease. NotFound when the instance is unknown or its
  // lease has lapsed. Returns the instance's TTL.
  absl::StatusOr<uint32_t> Heartbeat(const InstanceKey& key);

  struct ListResult {
    uint64_t revision = 0;          // registry revision the answer reflects
    uint64_t service_revision = 0;  // revision of the last change to this service
    std::vector<std::shared_ptr<const Instance>> instances;  // sorted by id
  };
  ListResult List(std::string_view ns, std::string_view service, const ListFilter& filter) const;

  // Revision of the last change to the service (0 if never changed).
  uint64_t ServiceRevision(std::string_view ns, std::string_view service) const;

  // Services with at least one instance, sorted by name.
  std::vector<ServiceSummary> Services(std::string_view ns, uint64_t* revision) const;

  uint64_t revision() const;
  size_t instance_count() const;
  WatchHub& hub() { return hub_; }
  const LeaseTable& leases() const { return leases_; }

  // Wakes the committer to look for lapsed leases now (tests with a ManualClock).
  void SweepNow();

 private:
  struct Record {
    std::shared_ptr<const Instance> instance;
    LeaseId lease = 0;  // 0: no lease
  };
  struct ServiceKey {
    std::string ns;
    std::string service;
    friend bool operator==(const ServiceKey&, const ServiceKey&) = default;
    template <typename H>
    friend H AbslHashValue(H h, const ServiceKey& k) {
      return H::combine(std::move(h), k.ns, k.service);
    }
  };
  struct ServiceState {
    absl::btree_map<std::string, Record> instances;
    uint64_t last_change = 0;  // kept after the last instance leaves, for blocking queries
  };
  // A queued write.
  struct Op {
    enum Kind { kRegister, kDeregister, kExpire } kind;
    InstanceKey key;
    std::shared_ptr<const Instance> instance;  // kRegister
    LeaseId lease = 0;                         // kExpire: the lease that lapsed
    WriteCallback done;                        // null for kExpire
  };
  // What deciding an op produced.
  struct Outcome {
    absl::Status status;
    bool changes = false;  // writes a mutation and an event
    bool renew_only = false;
    EventType type = EventType::kRegistered;
    std::shared_ptr<const Instance> instance;
    uint64_t revision = 0;
  };

  void Enqueue(Op op);
  void CommitterLoop();
  // Decides, commits and applies one batch.
  void RunBatch(std::vector<Op> batch);
  const Record* FindLocked(const InstanceKey& key) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void ApplyLocked(const Op& op, const Outcome& outcome) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static bool Passes(const Instance& instance, const ListFilter& filter);

  // Constant after construction.
  const CatalogOptions options_;
  Journal* const journal_;

  LeaseTable leases_;
  WatchHub hub_;

  // The state below is written only by the committer thread, under mu_.
  mutable std::shared_mutex mu_;
  absl::flat_hash_map<ServiceKey, ServiceState> services_ ABSL_GUARDED_BY(mu_);
  uint64_t revision_ ABSL_GUARDED_BY(mu_) = 0;
  size_t instance_count_ ABSL_GUARDED_BY(mu_) = 0;

  // The write queue.
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::vector<Op> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;
  bool sweep_now_ ABSL_GUARDED_BY(queue_mu_) = false;
  bool started_ ABSL_GUARDED_BY(queue_mu_) = false;
  std::thread committer_;
};

}  // namespace muster
