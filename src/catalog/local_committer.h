// LocalCommitter: the embedded write path (catalog/write_path.h).
//
// One committer thread takes every write queued so far as a batch, decides
// each against the view plus the batch's earlier writes, makes the batch
// durable through the Journal in one sync (group commit: concurrent writers
// share the fsync), and only then applies it to the view, publishes its
// events and completes the callers. So nothing a reader or watcher sees can
// be lost by a crash, and revisions are assigned in exactly the order changes
// become visible.
//
// Leases live here (core/lease_table.h), with the lease's id kept in the
// view's record of its instance. A heartbeat renews in memory on the
// caller's thread. The committer sweeps lapsed leases every sweep_interval
// (expiring them as writes of the next batch), unless self-preservation
// holds expiry back (self_preservation.h).
//
// Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/mutex.h"
#include "muster/clock.h"
#include "catalog/journal.h"
#include "core/lease_table.h"
#include "catalog/self_preservation.h"
#include "catalog/write_path.h"
#include "core/limits.h"

namespace muster {

struct LocalCommitterOptions {
  Limits limits;
  const Clock* clock = SteadyClock::Get();
  // Upper bound on how long a lapsed lease waits for the sweep.
  std::chrono::milliseconds sweep_interval{100};
  // Most writes taken into one batch (one fsync).
  size_t max_batch = 4096;
  // Stop expiring when leases lapse en masse (self_preservation.h).
  SelfPreservationOptions self_preservation;
};

class LocalCommitter final : public WritePath {
 public:
  // `journal` may be null (memory only); it must outlive the committer.
  LocalCommitter(LocalCommitterOptions options, Journal* journal);
  ~LocalCommitter() override;
  LocalCommitter(const LocalCommitter&) = delete;
  LocalCommitter& operator=(const LocalCommitter&) = delete;

  // Loads the journal's snapshot into `view` (every lease restarts with a
  // full TTL) and starts the committer.
  absl::Status Start(CatalogView& view) override;
  void Stop() override;

  void Register(Instance instance, WriteCallback done) override;
  void Deregister(InstanceKey key, WriteCallback done) override;
  void SetCheckState(InstanceKey key, Check check, WriteCallback done) override;
  // Always answers at once.
  std::optional<absl::StatusOr<uint32_t>> TryHeartbeat(const InstanceKey& key) override;
  void Heartbeat(InstanceKey key, HeartbeatCallback done) override;
  // The one node leads for good: `on_change(true)` at once.
  absl::Status StandForLeadership(std::string candidate, LeadershipListener on_change) override;
  WritePathStatus status() const override;

  // Tests: runs a sweep for lapsed leases now, as the next batch, and
  // returns once its expiries are applied and published (or at once when
  // stopped). Self-preservation applies as to any sweep.
  void SweepNow();
  const LeaseTable& leases() const { return leases_; }

 private:
  // A queued write.
  struct Op {
    enum Kind { kRegister, kDeregister, kExpire, kCheck } kind;
    InstanceKey key;
    std::unique_ptr<Instance> instance;        // kRegister; the decision takes it
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

  void Enqueue(Op op);
  void CommitterLoop();
  // Decides, commits and applies one batch.
  void RunBatch(std::vector<Op> batch);
  // Applies one decided op to the view, with its lease.
  void ApplyLocked(const Op& op, const Outcome& outcome) ABSL_EXCLUSIVE_LOCKS_REQUIRED(view_->mu());

  // Constant after construction.
  const LocalCommitterOptions options_;
  Journal* const journal_;
  CatalogView* view_ = nullptr;  // set by Start

  LeaseTable leases_;
  SelfPreservation preservation_;  // the committer thread's
  std::atomic<bool> store_write_failing_{false};  // written by the committer thread

  // The write queue.
  mutable Mutex queue_mu_;
  CondVar queue_cv_;
  std::vector<Op> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;
  bool started_ ABSL_GUARDED_BY(queue_mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(queue_mu_) = false;  // the committer has finished
  // SweepNow's requests: the committer sweeps when `sweeps_asked_` passes
  // `sweeps_done_`, and counts each sweep done once its batch is applied.
  uint64_t sweeps_asked_ ABSL_GUARDED_BY(queue_mu_) = 0;
  uint64_t sweeps_done_ ABSL_GUARDED_BY(queue_mu_) = 0;
  CondVar sweep_cv_;
  std::thread committer_;
  // The committer thread's: lapsed leases whose expiry the store failed to
  // write, tried again with the next batch.
  std::vector<Op> retry_;
};

}  // namespace muster
