// ClusterWriter: the write path of cluster mode (catalog/write_path.h).
//
// The catalog decides and stores nothing itself: writes and heartbeats go to
// the cluster store (etcd, catalog/cluster_store.h), and the view is fed by
// the store's feed of every change, with the store's revisions. A write is
// answered once this node's view has applied it (or after kApplyWait if the
// feed lags), so a client reads its own writes from the node it wrote to. The
// store expires leases; no lease table and no sweep run here.
//
// Thread-safe. Write callbacks run on the store's threads, or on the waiter
// thread of this class when the feed lags.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "catalog/cluster_store.h"
#include "catalog/write_path.h"
#include "core/limits.h"
#include "core/mutex.h"

namespace muster {

class ClusterWriter final : public WritePath {
 public:
  // `store` must outlive the writer.
  ClusterWriter(Limits limits, ClusterStore* store);
  ~ClusterWriter() override;
  ClusterWriter(const ClusterWriter&) = delete;
  ClusterWriter& operator=(const ClusterWriter&) = delete;

  // How long a write waits for this node's view to apply it before it is
  // answered anyway (it is durable in the store by then).
  static constexpr std::chrono::seconds kApplyWait{5};

  // Starts following the store into `view`; returns once the view holds
  // the store's state.
  absl::Status Start(CatalogView& view) override;
  void Stop() override;

  void Register(Instance instance, WriteCallback done) override;
  void Deregister(InstanceKey key, WriteCallback done) override;
  void SetCheckState(InstanceKey key, Check check, WriteCallback done) override;
  // Never at hand: the lease is renewed in the store.
  std::optional<absl::StatusOr<uint32_t>> TryHeartbeat(const InstanceKey&) override {
    return std::nullopt;
  }
  void Heartbeat(InstanceKey key, HeartbeatCallback done) override;
  // Campaigns in the store's leader election.
  absl::Status StandForLeadership(std::string candidate, LeadershipListener on_change) override;
  WritePathStatus status() const override;

 private:
  class Feed;

  // False (and `done` answered Unavailable) when not started or stopping.
  template <typename Done>
  bool Accepting(Done& done);
  // The store's answer to a write, passed to `done` once this node's view
  // has applied it (or kApplyWait passed).
  ClusterStore::WriteDone AnswerWhenApplied(WriteCallback done);
  // Runs `then` once the view has applied `revision` (or kApplyWait passed).
  void WhenApplied(uint64_t revision, absl::AnyInvocable<void() &&> then);
  // Marks `revision` applied and runs the waiters it satisfies.
  void Applied(uint64_t revision);
  // The feed's three calls.
  void ResetView(std::vector<Instance> instances, uint64_t revision);
  void ApplyEvents(std::vector<Event> events, uint64_t revision);
  void Interrupted(const absl::Status& status);
  void WaiterLoop();

  const Limits limits_;
  ClusterStore* const store_;
  CatalogView* view_ = nullptr;  // set by Start
  std::unique_ptr<Feed> feed_;

  mutable Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  // Writes waiting for the view to apply their revision.
  struct Waiter {
    uint64_t revision;
    std::chrono::steady_clock::time_point since;
    absl::AnyInvocable<void() &&> then;
  };
  mutable Mutex waiters_mu_;
  CondVar waiters_cv_;
  uint64_t applied_ ABSL_GUARDED_BY(waiters_mu_) = 0;  // the view's revision, as waiters see it
  std::vector<Waiter> waiters_ ABSL_GUARDED_BY(waiters_mu_);
  bool following_ ABSL_GUARDED_BY(waiters_mu_) = true;
  bool waiters_stopping_ ABSL_GUARDED_BY(waiters_mu_) = false;
  std::thread waiter_thread_;  // answers waiters whose wait ran out
};

}  // namespace muster
