#include "server/watch_stream.h"

#include <string_view>
#include <utility>
#include <vector>

#include <boost/json.hpp>

#include "absl/cleanup/cleanup.h"
#include "core/json_codec.h"
#include "core/wire/answers.h"
#include "core/wire/errors.h"
#include "core/strings.h"

namespace muster {
namespace json = boost::json;
using TimerClock = asio::steady_timer::clock_type;

namespace {

// Events per hub read, and bytes (Event::bytes: instance and text). A read
// that stops at either may have left more behind; the watch's coroutine then
// reads on, one write after another. The bytes bound what a watch holds on
// its own: the events of one read (their texts are the history's, shared, not
// copied), which the history may drop meanwhile, so a watch that stops
// reading keeps at most this much alive (plus one revision, never split)
// until --write-timeout ends it.
constexpr size_t kEventsPerRead = 256;
constexpr size_t kBytesPerRead = size_t{256} << 10;

// The texts of `events` (each formatted once, shared by every watch), as one
// buffer sequence for a gathering write. Valid while `events` is. Every event
// read from the hub is retained and so has a text.
std::vector<asio::const_buffer> EventBuffers(const std::vector<Event>& events) {
  std::vector<asio::const_buffer> buffers;
  buffers.reserve(events.size());
  for (const Event& e : events) {
    const std::string& text = e.text->Get([&e] { return FormatEvent(e); });
    buffers.push_back(asio::buffer(text));
  }
  return buffers;
}

// Takes the buffers by value: the coroutine starts when awaited, after a
// temporary argument would be gone. The bytes they point to must live on.
template <typename ConstBufferSequence>
awaitable<bool> WriteBuffers(beast::tcp_stream& stream, ConstBufferSequence buffers,
                             std::chrono::milliseconds timeout) {
  stream.expires_after(timeout);
  auto [ec, written] = co_await asio::async_write(stream, buffers, use_tuple);
  co_return !ec;
}

awaitable<bool> WriteAll(beast::tcp_stream& stream, std::string_view text,
                         std::chrono::milliseconds timeout) {
  stream.expires_after(timeout);
  auto [ec, written] = co_await asio::async_write(stream, asio::buffer(text), use_tuple);
  co_return !ec;
}

}  // namespace

std::string FormatEvent(const Event& e) {
  const Check* check = e.type == ChangeType::kHealth ? e.instance->FindCheck(e.check) : nullptr;
  const json::object o = wire::EventToJson(e.revision, e.type, *e.instance, check);
  // Built at its exact size: a retained text lives as long as its event, and
  // appending would leave up to twice its length allocated.
  const std::string data = json::serialize(o);
  const std::string head = StrCat("id: ", e.revision, "\nevent: ", ToString(e.type), "\ndata: ");
  std::string text;
  text.reserve(head.size() + data.size() + 2);
  text.append(head).append(data).append("\n\n");
  return text;
}

// One stream's state, shared by its coroutine, its hub subscription and its
// place in the delivery queue.
class WatchStreams::Watch {
 public:
  Watch(const WatchFilter& f, asio::any_io_executor executor, std::shared_ptr<Queue> q)
      : filter(f), queue(std::move(q)), timer(std::move(executor)) {}

  // Hands the watch to its coroutine (which must be parked).
  void Resume() { timer.cancel(); }

  // Constant after construction.
  const WatchFilter filter;
  const std::shared_ptr<Queue> queue;

  // Set by the hub's notify (any thread) and cleared by the drain: the watch
  // waits in its queue already, so another change need not queue it again.
  std::atomic<bool> queued{false};

  // The rest is touched on the watch's executor only.
  beast::tcp_stream* stream = nullptr;
  uint64_t next = 0;  // the revision to read from
  // The coroutine waits on it between events, until the keep-alive is due.
  asio::steady_timer timer;
  // The coroutine waits on `timer`, so no write is in flight and the drain
  // may write. False before the head is sent, during the coroutine's writes
  // and after the end.
  bool parked = false;
  bool failed = false;      // a write of the drain's failed
  // Events whose text the socket did not take whole, and how many bytes of
  // their texts it did take; the coroutine sends the rest. Shared texts,
  // not a copy.
  std::vector<Event> backlog;
  size_t backlog_sent = 0;
  TimerClock::time_point last_write;
};

// The watches of one I/O thread that have a change to deliver.
class WatchStreams::Queue : public std::enable_shared_from_this<Queue> {
 public:
  Queue(WatchStreams& owner, asio::any_io_executor executor)
      : owner_(owner), executor_(std::move(executor)) {}

  // From any thread (the hub's notify). Posts a drain unless one is posted.
  void Enqueue(std::shared_ptr<Watch> w) {
    // acq_rel: pairs with the drain's exchange, so that a drain that finds
    // the flag set by this call also sees the events appended before it.
    if (w->queued.exchange(true, std::memory_order_acq_rel)) return;
    bool post = false;
    {
      MutexLock lock(mu_);
      pending_.push_back(std::move(w));
      post = !drain_posted_;
      drain_posted_ = true;
    }
    if (post) asio::post(executor_, DrainTask(shared_from_this()));
  }

 private:
  // The posted drain. Destroyed without running (its context is being
  // destroyed), it drops the queued watches, whose timers belong to that
  // context, while the context still exists.
  class DrainTask {
   public:
    explicit DrainTask(std::shared_ptr<Queue> q) : queue_(std::move(q)) {}
    DrainTask(DrainTask&&) = default;
    DrainTask& operator=(DrainTask&&) = default;
    ~DrainTask() {
      if (queue_ != nullptr) queue_->Take();
    }
    void operator()() { std::exchange(queue_, nullptr)->Drain(); }

   private:
    std::shared_ptr<Queue> queue_;
  };

  std::vector<std::shared_ptr<Watch>> Take() {
    std::vector<std::shared_ptr<Watch>> batch;
    MutexLock lock(mu_);
    batch.swap(pending_);
    drain_posted_ = false;
    return batch;
  }

  void Drain() {
    std::vector<std::shared_ptr<Watch>> batch = Take();
    const auto now = TimerClock::now();
    for (const std::shared_ptr<Watch>& w : batch) {
      // Cleared before the read: a change appended after it queues w again.
      w->queued.exchange(false, std::memory_order_acq_rel);
      owner_.Deliver(*w, now);
    }
    batch.clear();
    // The next batch reuses the capacity.
    MutexLock lock(mu_);
    if (pending_.empty()) pending_.swap(batch);
  }

  WatchStreams& owner_;
  const asio::any_io_executor executor_;
  Mutex mu_;
  std::vector<std::shared_ptr<Watch>> pending_ ABSL_GUARDED_BY(mu_);
  bool drain_posted_ ABSL_GUARDED_BY(mu_) = false;
};

std::shared_ptr<WatchStreams::Queue> WatchStreams::QueueFor(const asio::any_io_executor& executor) {
  asio::execution_context* context = &asio::query(executor, asio::execution::context);
  MutexLock lock(queues_mu_);
  std::shared_ptr<Queue>& queue = queues_[context];
  if (queue == nullptr) queue = std::make_shared<Queue>(*this, executor);
  return queue;
}

void WatchStreams::Deliver(Watch& w, TimerClock::time_point now) {
  // Not parked: the coroutine is writing, or has not started or has ended.
  // It reads the hub again before it parks, so nothing is missed.
  if (!w.parked) return;
  if (stopping_) return w.Resume();
  WatchHub::ReadResult r = hub_.Read(w.next, w.filter, kEventsPerRead, kBytesPerRead);
  if (r.compacted || r.more) return w.Resume();
  w.next = r.next;
  if (r.events.empty()) return;
  const std::vector<asio::const_buffer> buffers = EventBuffers(r.events);
  const size_t total = asio::buffer_size(buffers);
  boost::system::error_code ec;
  // The socket is non-blocking (Serve made it so): this takes what fits.
  size_t sent = w.stream->socket().write_some(buffers, ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) {
    sent = 0;
    ec = {};
  }
  if (ec) {
    w.failed = true;
    return w.Resume();
  }
  w.last_write = now;
  if (sent < total) {
    w.backlog = std::move(r.events);
    w.backlog_sent = sent;
    ++backlogged_;
    w.Resume();
  }
}

awaitable<void> WatchStreams::Serve(const WatchFilter& filter, std::optional<uint64_t> from,
                                    beast::tcp_stream& stream) {
  const asio::any_io_executor executor = stream.get_executor();
  auto w = std::make_shared<Watch>(filter, executor, QueueFor(executor));
  // Subscribed before the first read, so that no change falls in between.
  WatchSubscription subscription(hub_, filter, [w] { w->queue->Enqueue(w); });
  ++open_;
  absl::Cleanup ended = [&] {
    w->parked = false;
    w->stream = nullptr;
    --open_;
  };
  w->next = from ? *from : hub_.last_revision() + 1;
  boost::system::error_code ec;
  stream.socket().non_blocking(true, ec);  // for the drain's writes
  if (ec) co_return;
  w->stream = &stream;

  // The head as text, not through Beast's serializer: a watch lives for
  // hours, and whatever its frame holds, each of ten thousand watchers holds.
  const std::string head = StrCat("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                  "Cache-Control: no-cache\r\nX-Muster-Index: ", hub_.last_revision(),
                                  "\r\nServer: musterd\r\nConnection: close\r\n\r\n");
  if (!co_await WriteAll(stream, head, config_.write_timeout)) co_return;
  w->last_write = TimerClock::now();
  while (!stopping_ && !w->failed) {
    if (!w->backlog.empty()) {
      const std::vector<Event> events = std::exchange(w->backlog, {});
      beast::buffers_suffix<std::vector<asio::const_buffer>> rest(EventBuffers(events));
      rest.consume(std::exchange(w->backlog_sent, 0));
      if (!co_await WriteBuffers(stream, std::move(rest), config_.write_timeout)) break;
      w->last_write = TimerClock::now();
      continue;
    }
    WatchHub::ReadResult r = hub_.Read(w->next, w->filter, kEventsPerRead, kBytesPerRead);
    if (r.compacted) {
      co_await WriteAll(stream,
                        StrCat("event: ", wire::kCompactedEvent, "\ndata: ",
                               wire::ErrorBody(wire::kGone.name, StrCat("the stream fell behind the retained "
                                                        "history at revision ", w->next,
                                                        "; list again and watch anew")),
                               "\n\n"),
                        config_.write_timeout);
      break;
    }
    w->next = r.next;
    if (!r.events.empty()) {
      std::vector<asio::const_buffer> buffers = EventBuffers(r.events);
      if (!co_await WriteBuffers(stream, std::move(buffers), config_.write_timeout)) break;
      w->last_write = TimerClock::now();
      continue;
    }
    const auto keepalive_at = w->last_write + config_.watch_keepalive;
    if (TimerClock::now() >= keepalive_at) {
      if (!co_await WriteAll(stream, ": keep-alive\n\n", config_.write_timeout)) break;
      w->last_write = TimerClock::now();
      continue;
    }
    // Parked until the keep-alive is due or the drain hands the watch back;
    // the drain's writes move last_write on, so the timer is set only here.
    w->timer.expires_at(keepalive_at);
    w->parked = true;
    co_await w->timer.async_wait(use_tuple);
    w->parked = false;
  }
}

}  // namespace muster
