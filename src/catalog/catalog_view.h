// CatalogView: the registry as every reader sees it — instances by namespace
// and service, the registry revision, each service's last change, the watch
// hub — whichever write path (catalog/write_path.h) keeps it up to date.
//
// Reads (List, Services, Get, revisions) take a shared lock and copy
// pointers, not instances: a stored instance is immutable and shared with
// the watch history. Writes come from exactly one write path, which decides
// a change, applies it here under the exclusive lock (the ...Locked members,
// with `mu()` held as they say) and then publishes it (Publish): appended to
// the watch history and told to the change listener. The view itself knows
// nothing of journals, leases or etcd.
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "catalog/event.h"
#include "catalog/watch_hub.h"
#include "core/limits.h"
#include "core/mutex.h"
#include "muster/instance.h"

namespace muster {

struct ListFilter {
  std::string version;  // empty: any
  bool healthy_only = false;
  std::vector<std::pair<std::string, std::string>> metadata;  // all must match
  std::vector<std::string> tags{};                             // all must be carried
};

struct ServiceSummary {
  std::string name;
  size_t instances = 0;
  size_t healthy = 0;
};

class CatalogView {
 public:
  // `history` and `history_bytes` bound the watch history (WatchHub: whichever
  // is reached first compacts).
  CatalogView(size_t history, size_t history_bytes) : hub_(history, history_bytes) {}
  CatalogView(const CatalogView&) = delete;
  CatalogView& operator=(const CatalogView&) = delete;

  // --- Reads --------------------------------------------------------------

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
  // The instances of namespace `ns` now, sorted by service and id; with a
  // non-empty `id`, only those with that id, of whatever service (an id is
  // unique within its service only). Costs a look at every service.
  std::vector<std::shared_ptr<const Instance>> InNamespace(std::string_view ns,
                                                           std::string_view id = {}) const;

  // Told of every batch of changes once it is visible, in revision order,
  // and with `reset` (and no events) when the whole state was replaced (a
  // cluster-mode resync: read AllInstances again). Runs on the thread that
  // applied the changes, under a lock that SetChangeListener also takes (so
  // once it returns the old listener is never called again): it must be
  // quick and must not call SetChangeListener. Null clears it.
  using ChangeListener = std::function<void(const std::vector<Event>& events, bool reset)>;
  void SetChangeListener(ChangeListener listener);

  WatchHub& hub() { return hub_; }
  const WatchHub& hub() const { return hub_; }

  static bool Passes(const Instance& instance, const ListFilter& filter);

  // --- For the write path --------------------------------------------------

  // One stored instance. `lease` is the write path's handle of the
  // instance's lease, kept with the record so a heartbeat finds it with the
  // instance (0: none, or the write path keeps leases elsewhere).
  struct Record {
    std::shared_ptr<const Instance> instance;
    uint64_t lease = 0;
    size_t bytes = 0;  // ApproximateBytes(*instance)
  };
  // How much of the limits a service uses now.
  struct Usage {
    size_t instances = 0;
    size_t bytes = 0;
  };

  // The lock the ...Locked members need: shared to read, exclusive to change.
  SharedMutex& mu() const ABSL_LOCK_RETURNED(mu_) { return mu_; }

  const Record* FindLocked(const InstanceKey& key) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  Usage UsageLocked(std::string_view ns, std::string_view service) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  uint64_t revision_locked() const ABSL_SHARED_LOCKS_REQUIRED(mu_) { return revision_; }
  size_t instance_bytes_locked() const ABSL_SHARED_LOCKS_REQUIRED(mu_) { return instance_bytes_; }

  // Stores `instance` under its key, replacing any, and returns its record
  // (the lease as it was; 0 for a new one). `change` > 0 records a change of
  // the service at that revision (0: a change no reader must notice, such as
  // a reload of what was stored).
  Record& PutLocked(std::shared_ptr<const Instance> instance, uint64_t change)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes the instance at `key` and returns its record; nullopt when it
  // was not there. Records a change of the service at `change`.
  std::optional<Record> EraseLocked(const InstanceKey& key, uint64_t change)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes every instance; every service known counts as changed at
  // `revision` (so blocking queries on it wake and read the new state).
  void ClearLocked(uint64_t revision) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sets the registry revision (never lowers it).
  void AdvanceRevisionLocked(uint64_t revision) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Makes applied changes visible to watchers: appends `events` to the watch
  // history and tells the change listener; returns the watchers to wake
  // (WatchHub::Wake), so the caller can answer its writers first. With
  // `reset` (no events): the whole state was replaced; wakes every watcher at
  // once instead. Called without mu(), by one write path thread at a time,
  // in revision order.
  WatchHub::Wakeups Publish(std::vector<Event> events, bool reset);

 private:
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

  WatchHub hub_;

  mutable SharedMutex mu_;
  absl::flat_hash_map<ServiceKey, ServiceState, ServiceKeyHash, ServiceKeyEq> services_
      ABSL_GUARDED_BY(mu_);
  uint64_t revision_ ABSL_GUARDED_BY(mu_) = 0;
  size_t instance_count_ ABSL_GUARDED_BY(mu_) = 0;
  size_t instance_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // sum over services_ of bytes

  // Held while the change listener runs.
  Mutex listener_mu_;
  ChangeListener listener_ ABSL_GUARDED_BY(listener_mu_);
};

// The limits every write path applies before it stores an instance.
//
// ResourceExhausted when a service that holds `instances` now cannot take
// one more (limits.max_instances_per_service).
absl::Status CheckInstanceLimit(const Limits& limits, std::string_view service, int64_t instances);
// OK when an instance of `added` bytes more (negative: fewer) fits the
// per-service and whole-registry limits, given `service_bytes` and
// `total_bytes` now; else the ResourceExhausted error that refuses it.
// Shrinking always fits, so a service over a lowered limit can be trimmed.
absl::Status CheckBytesLimit(const Limits& limits, std::string_view service, int64_t added,
                             int64_t service_bytes, int64_t total_bytes);

}  // namespace muster
