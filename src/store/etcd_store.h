// EtcdStore: the cluster store of musterd's cluster mode (catalog/cluster_store.h)
// on an etcd cluster. Instances are written with the same layout and the same
// code as the SDK's EtcdRegistry (etcd/instance_store.h), so musterd nodes and
// SDK clients on one etcd see each other's instances. The feed is one etcd
// watch on every service (etcd/watcher.h): it resumes after the last revision
// it delivered when a member dies, and hands over a fresh state (Reset) when
// etcd compacted the history it needed.
//
// etcd calls block, so writes and heartbeats run on a pool of worker threads
// (`workers`); an I/O thread never waits for etcd.
//
// Thread-safe.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "catalog/cluster_store.h"
#include "core/mutex.h"
#include "etcd/client.h"
#include "etcd/election.h"
#include "etcd/instance_store.h"
#include "etcd/watcher.h"

namespace muster {

struct EtcdStoreOptions {
  etcd::ClientOptions client;
  std::string prefix = "/muster";  // keys live under {prefix}/services/
  size_t workers = 8;              // threads making etcd calls for writes and heartbeats
  std::chrono::milliseconds call_timeout{5000};  // bound of each write or heartbeat
  // The lease of the leader election: how long a dead leader keeps
  // leadership at most (etcd/election.h).
  std::chrono::seconds election_ttl{5};
};

class EtcdStore final : public ClusterStore {
 public:
  // Connects to etcd (waits up to the client's dial timeout for a member).
  static absl::StatusOr<std::unique_ptr<EtcdStore>> Connect(EtcdStoreOptions options);
  ~EtcdStore() override;

  void Register(Instance instance, WriteDone done) override ABSL_LOCKS_EXCLUDED(mu_);
  void Deregister(InstanceKey key, WriteDone done) override ABSL_LOCKS_EXCLUDED(mu_);
  void Heartbeat(InstanceKey key, HeartbeatDone done) override ABSL_LOCKS_EXCLUDED(mu_);
  void SetCheckState(InstanceKey key, Check check, WriteDone done) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Start(Feed* feed) override ABSL_LOCKS_EXCLUDED(start_mu_);
  void Stop() override ABSL_LOCKS_EXCLUDED(mu_, election_mu_);
  Role role() const override ABSL_LOCKS_EXCLUDED(election_mu_);
  // The election on {prefix}/leader, with a lease of options.election_ttl.
  absl::Status Campaign(std::string candidate, std::function<void(bool leading)> on_change) override
      ABSL_LOCKS_EXCLUDED(election_mu_);

  etcd::Client& client() { return *client_; }
  const etcd::Layout& layout() const { return store_.layout(); }

 private:
  EtcdStore(EtcdStoreOptions options, std::unique_ptr<etcd::Client> client);
  // Queues `work` for a worker; runs `refuse` instead once stopping.
  void Submit(absl::AnyInvocable<void() &&> work, absl::AnyInvocable<void() &&> refuse)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Runs `write` on a worker and answers `done` with what it wrote.
  void SubmitWrite(absl::AnyInvocable<absl::StatusOr<etcd::InstanceStore::Written>() &&> write,
                   WriteDone done) ABSL_LOCKS_EXCLUDED(mu_);
  void WorkerLoop() ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<int64_t> Resync(Feed* feed) ABSL_LOCKS_EXCLUDED(start_mu_);
  void Deliver(Feed* feed, const std::vector<mvccpb::Event>& events, int64_t revision);

  const EtcdStoreOptions options_;
  const std::unique_ptr<etcd::Client> client_;
  etcd::InstanceStore store_;

  Mutex mu_;
  CondVar work_cv_;
  std::deque<absl::AnyInvocable<void() &&>> work_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;  // started by the constructor, joined by Stop

  // Start waits for the watcher's first resync.
  Mutex start_mu_;
  CondVar start_cv_;
  bool synced_ ABSL_GUARDED_BY(start_mu_) = false;
  absl::Status last_error_ ABSL_GUARDED_BY(start_mu_);

  std::unique_ptr<etcd::Watcher> watcher_;  // set by Start, reset by Stop

  mutable Mutex election_mu_;
  // The election's own connection: a renewal of its lease that times out
  // cancels its client's keep-alive stream, which must not be the one the
  // instances' heartbeats share. Set by Campaign, kept until destruction.
  std::unique_ptr<etcd::Client> election_client_ ABSL_GUARDED_BY(election_mu_);
  // Set by Campaign; reset (resigning) by Stop.
  std::unique_ptr<etcd::Election> election_ ABSL_GUARDED_BY(election_mu_);
  // {prefix}/leader: the election's key, whose create_revision is the term
  // that fences the leader's writes.
  const std::string election_key_ = store_.layout().prefix() + "/leader";
};

}  // namespace muster
