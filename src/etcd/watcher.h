// muster::etcd::Watcher: follows a key range of etcd, across member failures
// and compactions, on a thread of its own.
//
// The watcher first calls `resync`, which reads the current state (a Range)
// and hands it to its owner, and returns the revision that state reflects.
// It then opens a Watch stream from the next revision (with prev_kv) and
// passes every batch of events to `on_events`, in revision order. A batch
// never splits a revision: the events of one transaction arrive together.
//
// When the stream breaks (the member died, lost its leader, or the
// connection dropped), the watcher calls `on_error` once, then reconnects,
// on the next endpoint, from the revision after the last one it delivered:
// nothing is missed and nothing repeats. The first answer after an outage
// calls `on_events` with no events, which tells the owner that it is
// following again. When etcd has compacted the history the watcher needs, it
// calls `resync` again. Attempts back off from 100 ms to 2 s.
//
// Callbacks run on the watcher's thread, one at a time. The destructor stops
// the thread and waits for it; it must not run on that thread (inside a
// callback): use Stop() there, and destroy the watcher elsewhere.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/mutex.h"
#include "etcd/client.h"
#include "kv.pb.h"

namespace muster::etcd {

struct WatchHandler {
  // Reads the current state, hands it over, and returns its revision.
  std::function<absl::StatusOr<int64_t>()> resync;
  // Events of one or more revisions, oldest first; `revision` is the newest
  // revision the watcher has now seen (at least the last event's).
  std::function<void(const std::vector<mvccpb::Event>& events, int64_t revision)> on_events;
  // The watch stopped following (stream broken or resync failed): called
  // once per outage, with the reason.
  std::function<void(const absl::Status& status)> on_error;
};

class Watcher {
 public:
  // Follows [key, range_end) through `client`, which must outlive the watcher.
  Watcher(Client& client, std::string key, std::string range_end, WatchHandler handler);
  ~Watcher();
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

  // Makes the thread stop at its next step without waiting for it; no
  // callback starts after Stop returns (one running on another thread may
  // still finish). Safe from a callback.
  void Stop();

 private:
  void Run();
  // One stream from `next_revision_`; returns when it breaks or on Stop.
  // Sets `compacted` when etcd no longer has that revision.
  grpc::Status Follow(bool& compacted, bool& delivered_any);
  // Sleeps up to `delay` unless stopped; false when stopped.
  bool Pause(std::chrono::milliseconds delay);

  Client& client_;
  const std::string key_;
  const std::string range_end_;
  const WatchHandler handler_;

  std::atomic<bool> stopped_{false};
  Mutex mu_;
  CondVar wake_;
  grpc::ClientContext* active_ ABSL_GUARDED_BY(mu_) = nullptr;  // the open stream's, for Stop

  // Watcher thread only.
  int64_t next_revision_ = 0;  // where the next stream starts
  bool in_outage_ = false;     // on_error was called and nothing followed yet
  std::thread thread_;
};

}  // namespace muster::etcd
