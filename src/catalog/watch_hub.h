// The retained history of change events and the watchers waiting for them.
//
// Events carry increasing revisions. In embedded mode every change raises the
// registry revision by one, so they are contiguous; in cluster mode they are
// etcd's revisions, which have gaps (writes elsewhere in etcd) and may repeat
// (several instances changed by one transaction). The history retains whole
// revisions from oldest_retained() on; a read from before that is compacted.
//
// The history is bounded twice: by events (`history_limit`) and by bytes
// (`history_bytes`, counting ApproximateBytes of each event: its instance and
// its text). Whichever is exceeded first drops whole revisions from the
// front; the newest revision always stays, however large, so that a watcher
// woken for it can read it. The byte bound is what keeps memory bounded when
// instances are large: a count alone lets 65,536 events of 64 KiB instances
// hold gigabytes.
//
// A watcher reads events from a revision on (Read) and, to be woken, subscribes
// a notify callback for the services it follows. Publish appends first and
// notifies after, so a watcher that subscribes, then reads, then sleeps until
// notified never misses an event.
//
// Thread-safe. Notify callbacks run on the publishing thread with no lock
// held; they must be quick (post work elsewhere) and must not call Subscribe
// or Unsubscribe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "catalog/event.h"
#include "core/mutex.h"

namespace muster {

// Which events a watcher wants: one namespace, and either some services or all.
struct WatchFilter {
  std::string ns{kDefaultNamespace};
  std::vector<std::string> services;  // empty: every service in ns

  bool Matches(const Instance& instance) const;
};

class WatchHub {
 public:
  // Keeps at most `history_limit` events and `history_bytes` bytes of them
  // (but always the newest revision).
  explicit WatchHub(size_t history_limit, size_t history_bytes = SIZE_MAX)
      : history_limit_(history_limit), history_bytes_(history_bytes) {}
  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  // Empties the history; the next event published must carry revision + 1.
  void Reset(uint64_t revision);

  // Appends events (revisions not below the last one, greater than the Reset
  // revision) and notifies the subscribers whose filter matches any of them.
  void Publish(std::vector<Event> events) { Wake(Append(std::move(events))); }

  // Publish in two steps, for a publisher with something more urgent to do
  // in between (the catalog answers the writers first): Append makes the
  // events readable and returns whom they concern; Wake notifies those. A
  // watcher that subscribes after Append reads the events itself.
  class Wakeups;
  Wakeups Append(std::vector<Event> events);
  void Wake(Wakeups wakeups);

  struct ReadResult {
    // True when `from` is older than the retained history: the watcher must resync.
    bool compacted = false;
    std::vector<Event> events;  // matching events, in revision order
    uint64_t next = 0;          // the revision to read from next time
    // The read stopped at `max` or `max_bytes` before the newest event: read
    // again from `next` for the rest.
    bool more = false;
  };
  // Events with revision >= from that match `filter`: about `max` of them,
  // holding about `max_bytes` (Event::bytes); more when the events of the
  // last revision read exceed either, since a revision is never split.
  // `from` past the last revision yields no events and next = from.
  ReadResult Read(uint64_t from, const WatchFilter& filter, size_t max,
                  size_t max_bytes = SIZE_MAX) const;

  // What the history holds now.
  struct HistoryStats {
    size_t events = 0;
    size_t bytes = 0;                // sum of the events' ApproximateBytes
    uint64_t oldest_revision = 0;    // oldest_retained()
  };
  HistoryStats history_stats() const;

  // The revision of the newest event (or the Reset revision when none).
  uint64_t last_revision() const;
  // The oldest revision still readable; from < this is compacted.
  uint64_t oldest_retained() const;

  using SubscriptionId = uint64_t;
  SubscriptionId Subscribe(const WatchFilter& filter, std::function<void()> notify);
  void Unsubscribe(SubscriptionId id);
  // Notifies every subscriber (e.g. on shutdown).
  void NotifyAll();
  size_t subscriber_count() const;

 private:
  struct Subscriber {
    WatchFilter filter;
    std::function<void()> notify;
  };

 public:
  // Whom an Append concerns, until Wake.
  class Wakeups {
   public:
    size_t size() const { return subscribers_.size(); }

   private:
    friend class WatchHub;
    std::vector<std::shared_ptr<Subscriber>> subscribers_;
  };

 private:
  // "ns\0service", or "ns\0" with an empty service for all-services watchers.
  static std::string IndexKey(std::string_view ns, std::string_view service);

  // Constant after construction.
  const size_t history_limit_;
  const size_t history_bytes_;

  mutable Mutex mu_;
  std::deque<Event> history_ ABSL_GUARDED_BY(mu_);
  // Sum of Event::bytes over history_.
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // Reads from below this are compacted: history_.front().revision, or more
  // when the revisions before that had no event.
  uint64_t first_revision_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t last_revision_ ABSL_GUARDED_BY(mu_) = 0;

  mutable Mutex subs_mu_ ABSL_ACQUIRED_AFTER(mu_);
  SubscriptionId next_subscription_ ABSL_GUARDED_BY(subs_mu_) = 1;
  absl::flat_hash_map<SubscriptionId, std::shared_ptr<Subscriber>> subscribers_
      ABSL_GUARDED_BY(subs_mu_);
  // Index from IndexKey to the subscribers following it.
  absl::flat_hash_map<std::string, absl::flat_hash_set<SubscriptionId>> by_key_ ABSL_GUARDED_BY(subs_mu_);
};

// A hub subscription for as long as it lives (however the waiting ends).
class WatchSubscription {
 public:
  WatchSubscription(WatchHub& hub, const WatchFilter& filter, std::function<void()> notify)
      : hub_(hub), id_(hub.Subscribe(filter, std::move(notify))) {}
  ~WatchSubscription() { hub_.Unsubscribe(id_); }
  WatchSubscription(const WatchSubscription&) = delete;
  WatchSubscription& operator=(const WatchSubscription&) = delete;

 private:
  WatchHub& hub_;
  const WatchHub::SubscriptionId id_;
};

}  // namespace muster
