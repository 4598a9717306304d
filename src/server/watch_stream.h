// The Server-Sent Events streams of GET /api/v1/watch, one per connection.
//
// A change to a service with ten thousand watchers has to reach ten thousand
// sockets, so the path from a published change to each socket is kept short.
// A watch's coroutine writes the head, catches up on history, sends the
// keep-alives and ends the stream; it parks on a timer between events. A new
// change does not resume it: the hub's notify puts the watch on its I/O
// thread's delivery queue (one hand-off per thread and batch, not one per
// watch), and the queue's drain reads each parked watch's new events and
// writes them with one non-blocking send. A watch goes back to its
// coroutine only when it needs more than that: its socket took less than the
// whole text (a slow reader; the rest waits in the watch, and the coroutine
// sends it with the write timeout), a send failed, the history moved past it,
// there were more events than one read returns, or the server is stopping.
//
// What a watch holds of its own is bounded in bytes: one read of the hub (at
// most 256 events and 256 KiB of them, or one revision), whose texts are the
// history's own, written without a copy. A watcher that does not read keeps
// that much until --write-timeout closes its connection; one that reads more
// slowly than the changes come falls behind the history and ends with
// "event: compacted" (docs/operations.md, "Memory").
//
// Everything a watch does runs on its connection's executor, which must run
// one handler at a time (each of musterd's I/O threads runs an io_context of
// its own); only the queue's hand-off crosses threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>

#include <boost/beast/core.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "catalog/watch_hub.h"
#include "core/mutex.h"
#include "server/async_util.h"
#include "server/config.h"

namespace muster {

namespace beast = boost::beast;

// One event as the stream carries it ("id:", "event:", "data:" lines).
std::string FormatEvent(const Event& e);

class WatchStreams {
 public:
  WatchStreams(const ServerConfig& config, WatchHub& hub) : config_(config), hub_(hub) {}
  WatchStreams(const WatchStreams&) = delete;
  WatchStreams& operator=(const WatchStreams&) = delete;

  // Streams the events matching `filter`, from revision `from` on (none: from
  // the next change on), to `stream`: the response head, then the events,
  // with a keep-alive comment after each quiet --watch-keepalive. Ends when a
  // write fails or times out, when the stream falls behind the retained
  // history (after an "event: compacted"), or at BeginShutdown. Run it on
  // the stream's executor.
  awaitable<void> Serve(const WatchFilter& filter, std::optional<uint64_t> from,
                        beast::tcp_stream& stream);

  // Makes every stream end soon (each at its next turn, woken by the hub's
  // NotifyAll, which the caller sends after this).
  void BeginShutdown() { stopping_ = true; }

  struct Stats {
    uint64_t open = 0;
    // Changes a socket did not take whole at once: its reader is slower than
    // the changes, and the rest waited for the stream's own write.
    uint64_t backlogged = 0;
  };
  Stats stats() const { return {open_.load(), backlogged_.load()}; }

 private:
  class Watch;
  class Queue;

  // The delivery queue of the I/O thread behind `executor`, made on first use.
  std::shared_ptr<Queue> QueueFor(const asio::any_io_executor& executor);
  // Writes w's new events if it is parked and its socket takes them; else
  // hands it to its coroutine. On w's executor, from its queue's drain.
  void Deliver(Watch& w, asio::steady_timer::time_point now);

  const ServerConfig& config_;
  WatchHub& hub_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> open_{0};
  std::atomic<uint64_t> backlogged_{0};

  Mutex queues_mu_;
  // One per execution context (I/O thread) a stream has run on.
  absl::flat_hash_map<asio::execution_context*, std::shared_ptr<Queue>> queues_
      ABSL_GUARDED_BY(queues_mu_);
};

}  // namespace muster
