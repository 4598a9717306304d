// What the catalog needs from a cluster store (store/etcd_store.h), the state
// of musterd's cluster mode: writes made durable and decided elsewhere (in
// etcd, shared by every musterd node), and a feed of every change, from which
// each node keeps its own in-memory view.
//
// Revisions in cluster mode are the cluster store's (etcd's): increasing, but
// with gaps, and one transaction may change several instances at one revision.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "catalog/event.h"
#include "muster/instance.h"

namespace muster {

class ClusterStore {
 public:
  virtual ~ClusterStore() = default;

  struct Written {
    std::shared_ptr<const Instance> instance;  // as stored; for a deregister, its last state
    bool created = false;                      // a new instance
    bool changed = false;                      // false: the same registration again (renewed)
    uint64_t revision = 0;                     // the store's revision after the write
  };
  using WriteDone = absl::AnyInvocable<void(absl::StatusOr<Written>) &&>;
  using HeartbeatDone = absl::AnyInvocable<void(absl::StatusOr<uint32_t>) &&>;

  // Asynchronous: `done` runs on a thread of the store once the store decided,
  // never on the calling thread. Register takes a validated instance; the
  // others answer NotFound for an unknown instance. Heartbeat answers the TTL.
  virtual void Register(Instance instance, WriteDone done) = 0;
  virtual void Deregister(InstanceKey key, WriteDone done) = 0;
  virtual void Heartbeat(InstanceKey key, HeartbeatDone done) = 0;
  // Records a new state of one active check (core/checks.h WithCheckState),
  // keeping the instance's lease. Only while this node leads the election,
  // and fenced by its term inside the write, so a deposed leader's late
  // result is never stored: FailedPrecondition then. NotFound when the
  // instance or the check (with that spec) is gone. Unchanged: changed=false.
  virtual void SetCheckState(InstanceKey key, Check check, WriteDone done) = 0;

  // Where the store sends what changed, from one thread at a time, in order.
  class Feed {
   public:
    virtual ~Feed() = default;
    // The whole state at `revision`: first, and again whenever the store could
    // not follow every change (it lost history).
    virtual void Reset(std::vector<Instance> instances, uint64_t revision) = 0;
    // Changes after the last Reset or Apply, in revision order; the store has
    // seen everything up to `revision` (at least the last event's).
    virtual void Apply(std::vector<Event> events, uint64_t revision) = 0;
    // The store stopped following (e.g. lost its connection); the view is
    // stale until the next Apply or Reset.
    virtual void Interrupted(const absl::Status& status) = 0;
  };

  // This node's part in the cluster's leader election (work that must run
  // once, e.g. active health checks, is the leader's).
  struct Role {
    bool campaigning = false;  // false: no election runs (yet)
    bool leading = false;      // this node leads now
    std::string leader;        // the leader's advertised address; "" when none is known
    int64_t term = 0;          // the leader's term while this node leads, else 0
  };
  virtual Role role() const = 0;
  // Stands in the leader election as `candidate` (this node's advertised
  // address); `on_change(leading)` runs on the election's thread whenever
  // this node gains or loses leadership. Once.
  virtual absl::Status Campaign(std::string candidate, std::function<void(bool leading)> on_change) = 0;

  // Starts following into `feed`; returns once the first Reset was sent, or
  // with an error when that could not happen in time.
  virtual absl::Status Start(Feed* feed) = 0;
  // Stops following and waits for writes in progress to answer.
  virtual void Stop() = 0;
};

}  // namespace muster
