// WritePath: how changes reach the catalog. Exactly one write path keeps a
// CatalogView (catalog/catalog_view.h) up to date:
//
//   LocalCommitter (local_committer.h)  embedded mode: decides every write
//       itself, makes it durable through the Journal (RocksDB) with group
//       commit, keeps the leases and expires them, self-preservation.
//   ClusterWriter (cluster_writer.h)    cluster mode: writes go to the
//       cluster store (etcd), which decides and expires; the view follows
//       the store's feed of every change.
//
// Everything above the catalog (the HTTP API, GeeRPC, the health checker,
// main) talks to this interface through Catalog and never asks which one it
// has.
//
// Thread-safe. Write callbacks run on a write path thread: they must be
// quick (post the answer elsewhere).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "catalog/catalog_view.h"
#include "muster/instance.h"

namespace muster {

struct WriteResult {
  std::shared_ptr<const Instance> instance;  // as stored (last state for a deregister)
  bool created = false;                      // register: a new instance
  uint64_t revision = 0;                     // registry revision after the write
};
using WriteCallback = absl::AnyInvocable<void(absl::StatusOr<WriteResult>) &&>;
using HeartbeatCallback = absl::AnyInvocable<void(absl::StatusOr<uint32_t>) &&>;

// Who runs the work that must run once in the whole registry (active health
// checks): the elected leader in cluster mode, the one node when embedded.
// `on_change(true)` when this node gains that role, `on_change(false)` when
// it loses it; called one at a time, in order, on a write path thread (or on
// the caller's, at once). It must be quick and must not call back into the
// write path.
using LeadershipListener = std::function<void(bool leading)>;

// What /healthz shows of the write path. Unset fields do not apply to it.
struct WritePathStatus {
  std::string store;                          // "embedded" | "etcd"
  std::optional<bool> self_preserving;        // holding expiry back now
  std::optional<bool> store_write_failing;    // the last write to disk failed (a full disk)
  std::optional<bool> following;              // the view follows the store now
  // The leader election, once this node stands in it.
  struct Election {
    bool leading = false;
    std::string leader;  // the leader's advertised address; "" when none is known
    int64_t term = 0;    // while leading
  };
  std::optional<Election> election;
};

class WritePath {
 public:
  virtual ~WritePath() = default;

  // Fills `view` with the stored state and starts taking writes. Once,
  // before anything else; `view` must outlive the write path.
  virtual absl::Status Start(CatalogView& view) = 0;
  // Finishes every write already taken, then stops; later writes fail with
  // Unavailable.
  virtual void Stop() = 0;

  // Registers or updates a validated instance; `done` runs once it is
  // durable and visible in the view. Registering an identical instance again
  // only renews its lease. ResourceExhausted when the service is full (the
  // most instances, or limits.max_service_bytes / max_catalog_bytes).
  virtual void Register(Instance instance, WriteCallback done) = 0;
  // NotFound when unknown.
  virtual void Deregister(InstanceKey key, WriteCallback done) = 0;
  // Records a new state of one active check (the health checker's write):
  // `check` carries the spec it was run with and its new status and output.
  // Publishes a kHealth event. NotFound when the instance or the check (with
  // that spec) is gone; a write that changes nothing succeeds without an
  // event. In cluster mode only the leader's write is stored.
  virtual void SetCheckState(InstanceKey key, Check check, WriteCallback done) = 0;

  // Renews the instance's lease and answers its TTL. NotFound when the
  // instance is unknown or its lease has lapsed. When the answer is at hand
  // (the leases are in memory) TryHeartbeat returns it; else nullopt, and
  // the caller asks Heartbeat, whose `done` runs once the renewal is made
  // (on another thread).
  virtual std::optional<absl::StatusOr<uint32_t>> TryHeartbeat(const InstanceKey& key) = 0;
  virtual void Heartbeat(InstanceKey key, HeartbeatCallback done) = 0;

  // Stands for the work that must run once (see LeadershipListener) as
  // `candidate` (this node's advertised address). Once, after Start.
  virtual absl::Status StandForLeadership(std::string candidate, LeadershipListener on_change) = 0;

  virtual WritePathStatus status() const = 0;
};

}  // namespace muster
