// muster::Discovery: a client-side cache of the instances of the services an
// application calls, fed by registry subscriptions (no polling), served even
// when the registry is unreachable, with a balancer per service.
//
// Example:
//   muster::DiscoveryOptions options;
//   options.balancer = "round_robin";
//   muster::Discovery discovery(registry.get(), options);
//   muster::ServiceQuery orders;
//   orders.service = "orders";
//   auto picked = discovery.Pick(orders);
//   if (picked.ok()) Send(picked->instance().address);
//
// Thread-safe. Pick on a service already followed takes no global lock: it
// reads an immutable snapshot published by the subscription thread.
//
// Code that keeps something per instance (a connection, a gRPC channel) can
// hear of every new snapshot with AddListener instead of polling Get.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "muster/balancer.h"
#include "muster/clock.h"
#include "muster/registry.h"

namespace muster {

struct DiscoveryOptions {
  std::string balancer = "round_robin";  // a NewBalancer policy name
  BalancerOptions balancer_options;
  // How long the first use of a service waits for its first list.
  std::chrono::milliseconds first_list_timeout = std::chrono::seconds(5);
  // Protect threshold (as Nacos): when the share of healthy instances among
  // the enabled ones falls below it, hand out every enabled instance, the
  // critical ones too, rather than overload the few. Disabled instances are
  // never handed out. 0 turns it off.
  double protect_threshold = 0.0;
  // The time of the first list's wait and of updated_at/stale_since; must
  // outlive the Discovery. A test passes a ManualClock and advances it.
  const Clock* clock = SteadyClock::Get();
};

// What the cache holds for one service.
struct ServiceSnapshot {
  InstanceList instances;          // every known instance of the service, sorted by id
  InstanceList healthy;            // those handed out: enabled and not critical (protected: every enabled one)
  uint64_t revision = 0;           // registry revision of the last update
  bool stale = false;              // the registry is unreachable; this is the last known list
  Clock::time_point updated_at;    // last update from the registry (options.clock's time)
  Clock::time_point stale_since;   // when it became unreachable (if stale)
  bool protected_mode = false;     // the protect threshold is in force
};

// Hears of a followed service's snapshots (see Discovery::AddListener). A
// null snapshot means the Discovery stopped following the service.
using SnapshotListener = std::function<void(const std::shared_ptr<const ServiceSnapshot>&)>;
using ListenerId = uint64_t;

class Discovery {
 public:
  // `registry` must outlive the Discovery.
  Discovery(Registry* registry, DiscoveryOptions options);
  ~Discovery();
  Discovery(const Discovery&) = delete;
  Discovery& operator=(const Discovery&) = delete;

  // The cached view of a service, subscribing on first use (waiting up to
  // first_list_timeout for the first list: Unavailable if none came).
  absl::StatusOr<std::shared_ptr<const ServiceSnapshot>> Get(const ServiceQuery& query);

  // Picks an instance of the service with its balancer.
  absl::StatusOr<Picked> Pick(const ServiceQuery& query, const PickRequest& request = {});

  // Reports the end of a call on a picked instance (for least_request).
  void Done(const ServiceQuery& query, const Picked& picked, bool success);

  // Stops following a service. Its listeners get a null snapshot and are
  // removed.
  void Forget(const ServiceQuery& query);

  // Calls `listener` with the service's current snapshot, then with every
  // snapshot published after it (a registry update, or the mark of a stale
  // list), in order and one call at a time. Follows the service and waits for
  // its first list as Get does, and fails as Get does (the listener is then
  // not added); Cancelled when the service is forgotten meanwhile.
  //
  // The first call runs on the calling thread before AddListener returns;
  // the later ones on the registry backend's thread, once the snapshot is
  // published (Get returns it and Pick picks from it). When the Discovery
  // stops following the service (Forget, or its destruction) the listener
  // gets a null snapshot, on the thread that stopped it, and is removed:
  // add it again to go on.
  //
  // A listener must be quick and must not call into this Discovery: it runs
  // under the lock that orders the service's updates.
  absl::StatusOr<ListenerId> AddListener(const ServiceQuery& query, SnapshotListener listener);

  // Removes a listener. Once it returns, the listener is not running and
  // will not run again. Unknown (or already removed) ids are ignored. Must
  // not be called from a listener.
  void RemoveListener(ListenerId id);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace muster
