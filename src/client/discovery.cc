// muster::Discovery: one Entry per followed ServiceQuery, fed by a registry
// subscription, with an immutable ServiceSnapshot and a Balancer.
//
// Who runs what:
//   - Application threads call Get, Pick, Done and Forget. The first use of a
//     service creates its Entry and subscribes (serialized by create_mu_), then
//     waits on the Entry's condition variable for the first list.
//   - The registry backend's thread runs OnUpdate, one update at a time per
//     subscription: it applies the snapshot or changes to the Entry's instance
//     map, gives the balancer the new `healthy` list, then publishes a new
//     immutable ServiceSnapshot and wakes the waiters. A non-OK update only
//     republishes the last snapshot marked stale. Then, still under the
//     Entry's update_mu, it calls the Entry's listeners with the snapshot it
//     published: update_mu orders every call of a listener, the first one
//     (made by AddListener on the application's thread) and the null one
//     (made by Forget or ~Discovery) included.
//   - Pick and Done on a followed service take no lock shared between threads
//     and write no shared memory: each thread keeps its own reference to the
//     (immutable) map of entries, through a control block of its own, and
//     checks it against entries_version, an atomic that changes only when a
//     service is followed or forgotten. The balancer's Pick works the same
//     way. Get reads the snapshot under the Entry's own mutex.
//
// Time (the first list's wait, updated_at and stale_since) comes from
// options.clock, so a test drives it with a ManualClock.
//
// Retention: a thread's cache keeps the map it last saw (and so forgotten
// entries, or the entries of a destroyed Discovery) alive until the thread
// refreshes that slot or exits; at most kThreadSlots maps per thread.
#include "muster/discovery.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "client/service_query.h"
#include "core/mutex.h"
#include "core/strings.h"

namespace muster {
namespace {

using SteadyTime = Clock::time_point;

// "orders" or "orders@1.2" (namespace shown when not the default).
std::string Describe(const ServiceQuery& q) {
  std::string out = q.ns == kDefaultNamespace ? q.service : StrCat(q.ns, "/", q.service);
  if (!q.version.empty()) StrAppend(&out, "@", q.version);
  return out;
}

// The followed state of one service.
struct Entry {
  Entry(ServiceQuery q, std::unique_ptr<Balancer> b) : query(std::move(q)), balancer(std::move(b)) {}

  // Constant after construction.
  const ServiceQuery query;
  const std::unique_ptr<Balancer> balancer;
  // Set before the Entry is published in the map; read by Forget and
  // ~Discovery (under create_mu_).
  SubscriptionId subscription = 0;

  // True once the first list has been applied and given to the balancer;
  // never cleared. Lets Pick skip the Entry's mutex.
  std::atomic<bool> ready{false};

  // Serializes updates (the backend delivers them one at a time already; this
  // makes the ordering explicit and keeps the map safe from a racing
  // re-delivery on another thread).
  Mutex update_mu;
  // Every known instance by id (sorted, so snapshots come out sorted).
  std::map<std::string, Instance> by_id ABSL_GUARDED_BY(update_mu);
  // AddListener's listeners, called with each published snapshot.
  std::map<ListenerId, SnapshotListener> listeners ABSL_GUARDED_BY(update_mu);
  // Set when the Entry is closed: no listener is added after that.
  bool listeners_closed ABSL_GUARDED_BY(update_mu) = false;

  // What Get and the first-list waiters see.
  Mutex mu;
  CondVar changed;
  std::shared_ptr<const ServiceSnapshot> snapshot ABSL_GUARDED_BY(mu);  // null until the first list
  absl::Status error ABSL_GUARDED_BY(mu);  // the last failure, cleared by a good update
  bool closed ABSL_GUARDED_BY(mu) = false;  // forgotten or Discovery destroyed
};

using EntryMap = std::unordered_map<ServiceQuery, std::shared_ptr<Entry>, ServiceQueryHash>;

// A thread's copy of one Discovery's entry map. A few slots, so that a thread
// using several Discovery objects does not thrash.
struct ThreadSlot {
  uint64_t owner = 0;    // Discovery::Impl::id; 0: free
  uint64_t version = 0;  // entries_version the map was copied at
  std::shared_ptr<const EntryMap> map;
};
constexpr size_t kThreadSlots = 4;
struct ThreadCache {
  std::array<ThreadSlot, kThreadSlots> slots;
  size_t next_victim = 0;
};
thread_local ThreadCache thread_cache;

std::atomic<uint64_t> next_discovery_id{1};

}  // namespace

struct Discovery::Impl {
  Impl(Registry* r, DiscoveryOptions o)
      : registry(r),
        options(std::move(o)),
        clock(options.clock != nullptr ? options.clock : SteadyClock::Get()),
        id(next_discovery_id.fetch_add(1)) {}

  // Constant after construction.
  Registry* const registry;
  const DiscoveryOptions options;
  const Clock* const clock;
  const uint64_t id;  // tells this Discovery's thread-cache slots apart

  // Serializes following and forgetting services: every change to
  // `entries`, the Subscribe and Unsubscribe calls, and Entry::subscription
  // (which lives in the Entry, out of the annotation's reach). Subscribe and
  // Unsubscribe run under it, never under entries_mu, so a slow backend does
  // not block the threads that only refresh their copy of the map.
  Mutex create_mu ABSL_ACQUIRED_BEFORE(entries_mu);

  // The published map of entries: replaced (copy on write), never modified.
  Mutex entries_mu;
  std::shared_ptr<const EntryMap> entries ABSL_GUARDED_BY(entries_mu) =
      std::make_shared<const EntryMap>();
  // Raised under entries_mu whenever `entries` is replaced.
  std::atomic<uint64_t> entries_version{1};

  // Which Entry each listener is on, for RemoveListener. Never held together
  // with an Entry's update_mu: an id is entered before its listener is added
  // to the Entry, and erased after the Entry dropped it.
  std::atomic<uint64_t> next_listener_id{1};
  Mutex listeners_mu;
  std::unordered_map<ListenerId, std::weak_ptr<Entry>> listener_entries
      ABSL_GUARDED_BY(listeners_mu);

  // The entry of `query` if followed, from this thread's copy of the map.
  std::shared_ptr<Entry> Lookup(const ServiceQuery& query) {
    const uint64_t version = entries_version.load(std::memory_order_acquire);
    ThreadCache& cache = thread_cache;
    ThreadSlot* slot = nullptr;
    for (ThreadSlot& s : cache.slots) {
      if (s.owner == id) {
        slot = &s;
        break;
      }
    }
    if (slot == nullptr) {
      slot = &cache.slots[cache.next_victim];
      cache.next_victim = (cache.next_victim + 1) % kThreadSlots;
      slot->owner = id;
      slot->version = 0;
    }
    if (slot->version != version) {
      std::shared_ptr<const EntryMap> current;
      {
        MutexLock lock(entries_mu);
        current = entries;
        slot->version = entries_version.load(std::memory_order_relaxed);
      }
      // The slot owns the map through a control block of its own, so that
      // the reference counts a Pick touches are this thread's alone (copies
      // of the shared map's or entry's shared_ptr would make every Pick on
      // every thread increment the same counters).
      auto holder = std::make_shared<std::shared_ptr<const EntryMap>>(std::move(current));
      slot->map = std::shared_ptr<const EntryMap>(holder, holder->get());
    }
    auto it = slot->map->find(query);
    if (it == slot->map->end()) return nullptr;
    // Keeps the map, hence the entry, alive through the slot's control block.
    return std::shared_ptr<Entry>(slot->map, it->second.get());
  }

  // The entry of `query`, following the service first if needed.
  absl::StatusOr<std::shared_ptr<Entry>> Follow(const ServiceQuery& query) {
    if (query.service.empty()) return absl::InvalidArgumentError("no service given");
    if (auto e = Lookup(query)) return e;
    MutexLock create(create_mu);
    {
      MutexLock lock(entries_mu);
      auto it = entries->find(query);
      if (it != entries->end()) return it->second;
    }
    auto balancer = NewBalancer(options.balancer, options.balancer_options);
    if (!balancer.ok()) return balancer.status();
    auto entry = std::make_shared<Entry>(query, *std::move(balancer));
    // The callback may run until Unsubscribe returns; Forget and ~Discovery
    // call it before the Entry or the Impl can go away.
    auto sub = registry->Subscribe(query, [this, entry](const WatchUpdate& u) { OnUpdate(*entry, u); });
    if (!sub.ok()) {
      return absl::Status(sub.status().code(),
                          StrCat("following ", Describe(query), ": ", MessageOf(sub.status())));
    }
    entry->subscription = *sub;
    MutexLock lock(entries_mu);
    auto next = std::make_shared<EntryMap>(*entries);
    next->emplace(query, entry);
    entries = std::move(next);
    entries_version.fetch_add(1, std::memory_order_release);
    return entry;
  }

  // Waits for the first list of `entry`: up to first_list_timeout, or until
  // the backend reports the registry unreachable (then fails at once; the
  // subscription keeps trying and a later call succeeds once a list came).
  absl::StatusOr<std::shared_ptr<const ServiceSnapshot>> WaitForList(Entry& entry) {
    MutexLock lock(entry.mu);
    const SteadyTime until = clock->Now() + options.first_list_timeout;
    while (entry.snapshot == nullptr && entry.error.ok() && !entry.closed && clock->Now() < until) {
      clock->WaitUntil(entry.mu, entry.changed, until);
    }
    if (entry.snapshot != nullptr) return entry.snapshot;
    if (entry.closed) {
      return absl::CancelledError(
          StrCat("stopped following ", Describe(entry.query), " before its first list"));
    }
    if (!entry.error.ok()) {
      return absl::UnavailableError(
          StrCat("no list of ", Describe(entry.query), " yet: ", MessageOf(entry.error)));
    }
    return absl::UnavailableError(StrCat("no list of ", Describe(entry.query), " within ",
                                         options.first_list_timeout.count(), " ms"));
  }

  // Runs on the backend's subscription thread.
  void OnUpdate(Entry& entry, const WatchUpdate& update) {
    MutexLock apply(entry.update_mu);
    const SteadyTime now = clock->Now();
    if (!update.status.ok()) {
      std::shared_ptr<const ServiceSnapshot> published;
      {
        MutexLock lock(entry.mu);
        entry.error = update.status;
        if (entry.snapshot != nullptr && !entry.snapshot->stale) {
          auto stale = std::make_shared<ServiceSnapshot>(*entry.snapshot);
          stale->stale = true;
          stale->stale_since = now;
          entry.snapshot = std::move(stale);
          published = entry.snapshot;
        }
        entry.changed.NotifyAll();
      }
      if (published != nullptr) Notify(entry, published);
      return;
    }

    uint64_t revision = update.revision;
    if (update.snapshot) {
      entry.by_id.clear();
      for (const Instance& in : update.instances) {
        if (QueryMatches(entry.query, in)) entry.by_id.insert_or_assign(in.id, in);
      }
    } else {
      for (const Change& c : update.changes) {
        revision = std::max(revision, c.revision);
        const bool present = c.type == ChangeType::kRegistered || c.type == ChangeType::kUpdated;
        if (present && QueryMatches(entry.query, c.instance)) {
          entry.by_id.insert_or_assign(c.instance.id, c.instance);
        } else {
          entry.by_id.erase(c.instance.id);
        }
      }
    }
    if (!update.snapshot && revision == 0) {
      MutexLock lock(entry.mu);
      if (entry.snapshot != nullptr) revision = entry.snapshot->revision;
    }

    std::shared_ptr<const ServiceSnapshot> snapshot = BuildSnapshot(entry, revision, now);
    entry.balancer->Update(snapshot->healthy);
    {
      MutexLock lock(entry.mu);
      entry.snapshot = snapshot;
      entry.error = absl::OkStatus();
      entry.ready.store(true, std::memory_order_release);
      entry.changed.NotifyAll();
    }
    Notify(entry, snapshot);
  }

  // Calls the Entry's listeners with a snapshot it published (null: closed).
  static void Notify(Entry& entry, const std::shared_ptr<const ServiceSnapshot>& snapshot)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(entry.update_mu) {
    for (const auto& [listener_id, listener] : entry.listeners) listener(snapshot);
  }

  std::shared_ptr<const ServiceSnapshot> BuildSnapshot(Entry& entry, uint64_t revision,
                                                       SteadyTime now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(entry.update_mu) {
    auto all = std::make_shared<std::vector<Instance>>();
    auto healthy = std::make_shared<std::vector<Instance>>();
    all->reserve(entry.by_id.size());
    size_t enabled = 0;
    for (const auto& [instance_id, in] : entry.by_id) {
      all->push_back(in);
      if (in.status != InstanceStatus::kEnabled) continue;
      ++enabled;
      if (in.health != Health::kCritical) healthy->push_back(in);
    }
    auto s = std::make_shared<ServiceSnapshot>();
    s->revision = revision;
    s->updated_at = now;
    // Protect threshold (as Nacos), over the enabled instances: a disabled
    // instance was taken out on purpose and is never handed out.
    const double threshold = options.protect_threshold;
    if (threshold > 0 && enabled > 0 &&
        static_cast<double>(healthy->size()) < threshold * static_cast<double>(enabled)) {
      healthy->clear();
      for (const Instance& in : *all) {
        if (in.status == InstanceStatus::kEnabled) healthy->push_back(in);
      }
      s->protected_mode = true;
    }
    s->instances = std::move(all);
    s->healthy = std::move(healthy);
    return s;
  }

  // Stops following (the caller took the entry out of the map): its
  // subscription ends, its waiters wake, its listeners hear a null snapshot
  // and are dropped.
  void Close(Entry& entry) {
    registry->Unsubscribe(entry.subscription);
    {
      MutexLock lock(entry.mu);
      entry.closed = true;
      entry.changed.NotifyAll();
    }
    std::map<ListenerId, SnapshotListener> dropped;
    {
      MutexLock apply(entry.update_mu);
      entry.listeners_closed = true;
      Notify(entry, nullptr);
      dropped.swap(entry.listeners);
    }
    if (dropped.empty()) return;
    MutexLock lock(listeners_mu);
    for (const auto& [listener_id, listener] : dropped) listener_entries.erase(listener_id);
  }
};

Discovery::Discovery(Registry* registry, DiscoveryOptions options)
    : impl_(std::make_unique<Impl>(registry, std::move(options))) {}

Discovery::~Discovery() {
  MutexLock create(impl_->create_mu);
  std::shared_ptr<const EntryMap> all;
  {
    MutexLock lock(impl_->entries_mu);
    all = std::move(impl_->entries);
    impl_->entries = std::make_shared<const EntryMap>();
    impl_->entries_version.fetch_add(1, std::memory_order_release);
  }
  for (const auto& [query, entry] : *all) impl_->Close(*entry);
}

absl::StatusOr<std::shared_ptr<const ServiceSnapshot>> Discovery::Get(const ServiceQuery& query) {
  auto entry = impl_->Follow(query);
  if (!entry.ok()) return entry.status();
  return impl_->WaitForList(**entry);
}

absl::StatusOr<Picked> Discovery::Pick(const ServiceQuery& query, const PickRequest& request) {
  std::shared_ptr<Entry> entry = impl_->Lookup(query);
  if (entry == nullptr || !entry->ready.load(std::memory_order_acquire)) {
    auto followed = impl_->Follow(query);
    if (!followed.ok()) return followed.status();
    if (auto list = impl_->WaitForList(**followed); !list.ok()) return list.status();
    entry = *std::move(followed);
  }
  auto picked = entry->balancer->Pick(request);
  if (!picked.ok()) {
    return absl::Status(picked.status().code(),
                        StrCat(Describe(query), ": ", MessageOf(picked.status())));
  }
  return picked;
}

void Discovery::Done(const ServiceQuery& query, const Picked& picked, bool success) {
  if (auto entry = impl_->Lookup(query)) entry->balancer->Done(picked, success);
}

void Discovery::Forget(const ServiceQuery& query) {
  MutexLock create(impl_->create_mu);
  std::shared_ptr<Entry> entry;
  {
    MutexLock lock(impl_->entries_mu);
    auto it = impl_->entries->find(query);
    if (it == impl_->entries->end()) return;
    entry = it->second;
    auto next = std::make_shared<EntryMap>(*impl_->entries);
    next->erase(query);
    impl_->entries = std::move(next);
    impl_->entries_version.fetch_add(1, std::memory_order_release);
  }
  impl_->Close(*entry);
}

absl::StatusOr<ListenerId> Discovery::AddListener(const ServiceQuery& query,
                                                  SnapshotListener listener) {
  auto followed = impl_->Follow(query);
  if (!followed.ok()) return followed.status();
  std::shared_ptr<Entry> entry = *std::move(followed);
  if (auto list = impl_->WaitForList(*entry); !list.ok()) return list.status();

  // The entry as the map holds it: what Follow returns may be an alias
  // owned by this thread's lookup cache (Lookup), whose control block dies
  // with the thread or the cache's next refresh, and RemoveListener must
  // still find the entry through its weak_ptr then.
  {
    MutexLock lock(impl_->entries_mu);
    auto it = impl_->entries->find(query);
    if (it != impl_->entries->end() && it->second.get() == entry.get()) entry = it->second;
  }
  const ListenerId id = impl_->next_listener_id.fetch_add(1);
  {
    MutexLock lock(impl_->listeners_mu);
    impl_->listener_entries.emplace(id, entry);
  }
  {
    MutexLock apply(entry->update_mu);
    if (!entry->listeners_closed) {
      // The snapshot published last: every later one is published under
      // update_mu, after this call, and reaches the listener through Notify.
      std::shared_ptr<const ServiceSnapshot> current;
      {
        MutexLock lock(entry->mu);
        current = entry->snapshot;
      }
      auto added = entry->listeners.emplace(id, std::move(listener)).first;
      added->second(current);
      return id;
    }
  }
  MutexLock lock(impl_->listeners_mu);
  impl_->listener_entries.erase(id);
  return absl::CancelledError(
      StrCat("stopped following ", Describe(query), " while adding a listener"));
}

void Discovery::RemoveListener(ListenerId id) {
  std::shared_ptr<Entry> entry;
  {
    MutexLock lock(impl_->listeners_mu);
    auto it = impl_->listener_entries.find(id);
    if (it == impl_->listener_entries.end()) return;
    entry = it->second.lock();
    impl_->listener_entries.erase(it);
  }
  if (entry == nullptr) return;
  SnapshotListener removed;  // destroyed after the lock is released
  MutexLock apply(entry->update_mu);
  auto it = entry->listeners.find(id);
  if (it == entry->listeners.end()) return;
  removed = std::move(it->second);
  entry->listeners.erase(it);
}

}  // namespace muster
