// muster::etcd::Election: leader election among processes that share an etcd
// cluster, for musterd's cluster mode: work that must run exactly once (active
// health checks, sweeps) is done by the elected leader only.
//
// How it works. Each candidate holds an etcd lease of its own (options.ttl)
// and renews it every ttl/3 through the client's shared keep-alive stream.
// It campaigns with one transaction:
//   if create_revision(key) == 0 then put(key, candidate, lease) else range(key)
// and wins when the key is (now) bound to its own lease. The key's
// create_revision is the leader's term: it identifies this one tenure of the
// key and only grows (a fencing token). A Watcher follows the key: a follower
// campaigns again as soon as the key is deleted (resignation, lease expiry),
// and at least once per ttl anyway (in case the watch is down); the leader
// steps down at once if the key is deleted or replaced behind its back.
// Identity is the lease, never the candidate string: two nodes that
// advertise the same candidate still never both lead.
//
// Guarantees.
// - At most one leader at a time, as seen through leading(), provided the
//   clocks of this host and etcd's leader run at the same rate: a node
//   believes it leads only until (start of its last successful renewal) +
//   ttl - margin, where margin = ttl/4 clamped to [500 ms, 2 s]. etcd cannot
//   expire the lease before (that renewal's arrival) + ttl, and a new leader
//   needs the key deleted first. leading() checks the clock itself, so it
//   turns false on time even while the election's thread is stuck (say in a
//   slow on_change or a slow etcd call); on_change(false) follows as soon as
//   the thread gets there. Leader-only work should check leading() (or an
//   equivalent flag set by on_change) before each step, and a step must not
//   take longer than the margin. For writes that must never come from a
//   deposed leader, compare term() with the key's create_revision inside the
//   write's own etcd transaction (fencing).
//   (Caveat of etcd 3.4, not of this class: etcd does not replicate lease
//   renewals; for a moment after an etcd leader is partitioned away, a
//   renewal it still grants may not count on the new etcd leader, which
//   however restarts every lease's full TTL when it takes over.)
// - A lease that expired, or a renewal gap longer than ttl - margin, ends the
//   node's tenure for good: the lease is abandoned (revoked when etcd is
//   reachable) and the node campaigns again with a new one, so a term (the
//   key's create_revision) is one unbroken tenure on one node. A node cut off
//   from etcd longer than that comes back as a follower.
// - on_change(true) and on_change(false) alternate, starting with true, on
//   the election's thread, one at a time. on_change(true) may run before
//   Start() returns.
// - Handover: a leader that resigns or is destroyed revokes its lease, which
//   deletes the key; the watching followers campaign within milliseconds. A
//   leader that dies or is cut off is replaced once etcd expires its lease:
//   within about ttl + 0.5 s (etcd checks expiry every 500 ms) after its last
//   renewal, while it itself stopped leading `margin` before that.
// - etcd member failover: every call goes through Client (another member on
//   UNAVAILABLE, etcd's "hasleader" on the keep-alive and watch streams, so a
//   member cut off from the quorum is left). A new etcd leader restarts every
//   lease's TTL, so an etcd failover shorter than ttl - margin - ttl/3 does
//   not depose the leader; a longer one makes it step down rather than risk
//   two leaders.
// - Every etcd call has a deadline (ttl/2, between 1 s and 3 s; a renewal
//   never past the end of the node's belief), so destruction and Resign()
//   take at most a few such deadlines (the call in flight, then the revoke)
//   even when etcd is unreachable, and milliseconds when it answers.
//
// Example (musterd):
//   muster::etcd::ElectionOptions options;
//   options.key = "/muster/leader";
//   options.candidate = "10.0.0.7:8500";  // this node's advertised address
//   options.ttl = std::chrono::seconds(5);
//   auto election = muster::etcd::Election::Start(client, options, [&](bool leading) {
//     if (leading) health_checker.Start(); else health_checker.Stop();
//   });
//   if (!election.ok()) return election.status();
//   ...
//   (*election)->leader();  // "10.0.0.7:8500", or another node's address
//   election->reset();      // resigns: another node takes over at once
//
// Thread-safe. on_change must not destroy the Election (it may call Resign()).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/mutex.h"
#include "etcd/client.h"
#include "etcd/watcher.h"
#include "kv.pb.h"

namespace muster::etcd {

struct ElectionOptions {
  // The etcd key that the leader holds, e.g. "/muster/leader". Every
  // candidate of one election uses the same key.
  std::string key;
  // This node's identity, stored as the key's value while it leads and
  // returned by leader() on every node, e.g. its advertised address. Not empty.
  std::string candidate;
  // The lease's TTL: how long a dead leader keeps leadership at most (etcd
  // may raise it to its minimum, about 1.5 election timeouts). At least 1 s.
  std::chrono::seconds ttl{5};
};

class Election {
 public:
  // Validates `options` (InvalidArgument for an empty key or candidate, or a
  // ttl under 1 s) and starts campaigning on a thread of its own.
  // `on_change(leading)` runs on that thread whenever this node gains or loses
  // leadership (see the guarantees above); it may be empty. `client` must
  // outlive the Election.
  static absl::StatusOr<std::unique_ptr<Election>> Start(Client& client, ElectionOptions options,
                                                         std::function<void(bool leading)> on_change);

  // Stops campaigning and resigns: if leading, calls on_change(false) first,
  // then revokes the lease (which deletes the key, so that another candidate
  // takes over at once), stops the thread and the watch. Must not run on the
  // election's thread (inside on_change).
  ~Election();
  Election(const Election&) = delete;
  Election& operator=(const Election&) = delete;

  // Whether this node leads now. Turns false on time (see the guarantees),
  // possibly a moment before on_change(false) runs.
  bool leading() const;

  // The current leader's candidate value as last observed (its own while
  // leading); "" when there is none or it is not known yet. May lag behind
  // etcd while the watch is reconnecting.
  std::string leader() const;

  // The leader key's create_revision while leading(), else 0: a fencing token
  // that grows with every new tenure across all candidates.
  int64_t term() const;

  // Gives up leadership and stops campaigning for good (the Election then
  // only keeps leader() up to date; destroy it and start a new one to stand
  // again). If leading, on_change(false) runs first, then the lease is
  // revoked. Called off the election's thread, returns once that is done
  // (bounded by the call deadlines); called from on_change, returns at once
  // and the thread resigns when the callback returns. Idempotent.
  void Resign();

  // Tests only: behave as if cut off from etcd (a partition, or a process
  // frozen except for its clock). No more renewals, campaigns or watch
  // updates; leadership still ends on time, locally. ResumeForTest() lets the
  // node talk to etcd again.
  void SuspendForTest();
  void ResumeForTest();

 private:
  using Clock = std::chrono::steady_clock;

  Election(Client& client, ElectionOptions options, std::function<void(bool)> on_change);

  void Run();
  // The steps of Run(); each is called with mu_ held and may release it
  // around etcd calls and callbacks.
  void StepDown() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Grant() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Renew() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Campaign() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Revokes the lease (best effort) and forgets it.
  void DropLease(bool revoke) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Records what etcd said the key was at `revision` (kv == nullptr: absent),
  // unless something newer is known already.
  void Observe(int64_t revision, const mvccpb::KeyValue* kv) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the key, as observed since this node's win, is no longer its own.
  bool KeyLost() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool LeadingLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The etcd deadline of a call started now, no later than `limit`.
  Deadline CallDeadline(Clock::time_point limit) const;

  Client& client_;
  const ElectionOptions options_;
  const std::function<void(bool)> on_change_;
  const Clock::duration call_timeout_;

  // Guards the state shared by the election thread, the watcher's thread and
  // callers (everything below marked ABSL_GUARDED_BY(mu_)).
  mutable Mutex mu_;
  // Wakes the thread (observations, Resign, Stop, Suspend) and Resign's waiter.
  CondVar wake_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool resign_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool resigned_ ABSL_GUARDED_BY(mu_) = false;    // Resign() done
  bool thread_done_ ABSL_GUARDED_BY(mu_) = false;
  std::thread::id thread_id_ ABSL_GUARDED_BY(mu_);  // the election thread's, once it runs
  bool suspended_ ABSL_GUARDED_BY(mu_) = false;
  // Leadership; written by the election thread only.
  bool leading_ ABSL_GUARDED_BY(mu_) = false;
  int64_t term_ ABSL_GUARDED_BY(mu_) = 0;
  Clock::time_point valid_until_ ABSL_GUARDED_BY(mu_);  // leading() ends then
  // The key as last observed (watch, campaign answers).
  int64_t observed_revision_ ABSL_GUARDED_BY(mu_) = 0;
  bool observed_present_ ABSL_GUARDED_BY(mu_) = false;
  std::string observed_value_ ABSL_GUARDED_BY(mu_);
  int64_t observed_create_revision_ ABSL_GUARDED_BY(mu_) = 0;

  // The election thread's own state (not shared, no lock).
  int64_t lease_ = 0;                   // 0: none
  Clock::duration lease_ttl_{};         // as granted
  Clock::time_point lease_valid_until_;  // last renewal's start + ttl - margin
  Clock::time_point next_renewal_;
  Clock::time_point grant_retry_at_;
  Clock::time_point next_campaign_;     // campaign then even if the key exists
  Clock::time_point campaign_retry_at_;  // no campaign before (after an error)
  Clock::duration grant_backoff_;
  Clock::duration campaign_backoff_;

  std::thread thread_;
  std::unique_ptr<Watcher> watcher_;  // started before the thread, stopped after it
};

}  // namespace muster::etcd
