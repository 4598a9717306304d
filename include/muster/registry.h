// muster::Registry: the one interface every registry backend implements —
// in-process memory, musterd over HTTP, etcd, and (later) Consul.
//
// Example:
//   muster::MusterRegistryOptions options;
//   options.addresses = {"127.0.0.1:8470"};
//   auto registry = muster::NewMusterRegistry(options);
//   muster::Instance me;
//   me.service = "orders"; me.id = "orders-1"; me.address = "10.0.0.5:9000";
//   auto stored = (*registry)->Register(me, muster::CallOptions{});
//   muster::ServiceQuery orders;
//   orders.service = "orders";
//   auto list = (*registry)->ListServices(orders, muster::CallOptions{});
//
// Errors come back as absl::Status values with canonical codes, never as
// exceptions or crashes: NotFound (unknown instance: register again),
// InvalidArgument (bad input), Unavailable (registry unreachable: retry),
// DeadlineExceeded (the call's timeout passed), FailedPrecondition (closed).
//
// A Registry is safe for concurrent use from multiple threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "muster/change.h"
#include "muster/clock.h"
#include "muster/instance.h"

namespace muster {

// Per-call settings. Every call is bounded by its timeout.
struct CallOptions {
  std::chrono::milliseconds timeout = std::chrono::seconds(5);
};

// Which instances a list or subscription is about.
struct ServiceQuery {
  std::string ns{kDefaultNamespace};
  std::string service;
  std::string version;  // empty: every version
  // Only instances that carry every one of these tags (empty: any tags).
  std::vector<std::string> tags{};

  friend bool operator==(const ServiceQuery&, const ServiceQuery&) = default;
};

// A list answer: the instances (sorted by id) and the registry revision it reflects.
struct ServiceList {
  uint64_t revision = 0;
  std::vector<Instance> instances;
};

// What a subscription delivers. The first update of a subscription is a
// snapshot; then changes, in revision order, without gaps or duplicates.
// Whenever the backend cannot guarantee that (a reconnect after the history
// moved on), it delivers a fresh snapshot. While the registry is unreachable it
// delivers one update with a non-OK `status` (and no instances): keep what you
// have. The next update with an OK status — a snapshot, changes, or an empty
// update when it resumed without missing anything — means it is reachable again.
struct WatchUpdate {
  absl::Status status;
  bool snapshot = false;
  uint64_t revision = 0;            // the revision this update brings the subscriber to
  std::vector<Instance> instances;  // snapshot: the full list matching the query
  std::vector<Change> changes;      // otherwise: the changes, oldest first
};

// Runs on a backend thread, one update at a time per subscription; it must not
// block for long and must not call Unsubscribe for its own subscription.
using WatchCallback = std::function<void(const WatchUpdate&)>;

using SubscriptionId = uint64_t;

class Registry {
 public:
  virtual ~Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Registers or updates an instance (idempotent) and returns it as stored,
  // with its revisions. Renews its lease.
  virtual absl::StatusOr<Instance> Register(const Instance& instance,
                                            const CallOptions& options) = 0;

  // Removes an instance. NotFound when it is not registered.
  virtual absl::Status Deregister(const InstanceKey& key, const CallOptions& options) = 0;

  // Heartbeat: renews the instance's lease. NotFound when the instance is not
  // registered (any more): the caller should register again.
  virtual absl::Status UpdateService(const InstanceKey& key, const CallOptions& options) = 0;

  // The instances of a service (of one version when query.version is set).
  // An unknown service is an empty list, not an error.
  virtual absl::StatusOr<ServiceList> ListServices(const ServiceQuery& query,
                                                   const CallOptions& options) = 0;

  // Follows a service: `callback` gets a snapshot, then every change (see
  // WatchUpdate). Keeps following across registry outages until Unsubscribe.
  virtual absl::StatusOr<SubscriptionId> Subscribe(const ServiceQuery& query,
                                                   WatchCallback callback) = 0;

  // Stops a subscription; once it returns, its callback is not running and
  // will not run again. Unknown ids are ignored.
  virtual void Unsubscribe(SubscriptionId id) = 0;

  // Ends every subscription and releases connections. Later calls fail with
  // FailedPrecondition. Called by the destructor too.
  virtual void Close() = 0;

 protected:
  Registry() = default;
};

// In-process registry with musterd's semantics (TTL leases, revisions,
// watch), for tests and single-process applications.
struct MemoryRegistryOptions {
  // How often lapsed leases are looked for (in the clock's time).
  std::chrono::milliseconds sweep_interval = std::chrono::milliseconds(100);
  // The time of leases and sweeps; must outlive the registry. A test passes
  // a ManualClock and advances it instead of sleeping.
  const Clock* clock = SteadyClock::Get();
};
std::unique_ptr<Registry> NewMemoryRegistry(const MemoryRegistryOptions& options = {});

// A registry that talks to musterd over HTTP: keep-alive connections, SSE for
// subscriptions, and idempotent calls retried with backoff across addresses.
// NewMusterRegistry checks the options (InvalidArgument) and connects to
// nothing before the first call.
struct MusterRegistryOptions {
  std::vector<std::string> addresses;  // host:port of musterd nodes, tried in order
  int max_attempts = 3;                // per idempotent call, across addresses
  std::chrono::milliseconds initial_backoff = std::chrono::milliseconds(50);
  std::chrono::milliseconds max_backoff = std::chrono::seconds(2);
  size_t max_idle_connections = 8;  // kept per address
  // A subscription's watch stream on which nothing arrives for this long (no
  // event and no ": keep-alive" comment) is taken for dead: a half-open
  // connection (the host vanished, a middlebox dropped the flow) never reports
  // an error by itself. The subscription opens a new stream from the last
  // revision seen, and reports an outage only if that fails. Must be positive,
  // and should exceed musterd's --watch-keepalive (15 s by default) with room
  // to spare, or quiet streams are reopened for nothing.
  std::chrono::milliseconds stream_idle_timeout = std::chrono::seconds(45);
};
absl::StatusOr<std::unique_ptr<Registry>> NewMusterRegistry(const MusterRegistryOptions& options);

// A registry kept in etcd (v3 API over gRPC): one key per instance, bound to
// an etcd lease of its TTL; heartbeats are lease keep-alives on one shared
// stream; subscriptions are etcd watches. musterd's cluster mode uses the
// same keys, so both see each other's instances. docs/sdk-registries.md has
// the layout and the semantics.
struct EtcdRegistryOptions {
  // etcd members: host:port, or http://host:port / https://host:port (TLS).
  std::vector<std::string> endpoints;
  // How long NewEtcdRegistry waits for the first member to answer.
  std::chrono::milliseconds dial_timeout = std::chrono::seconds(5);
  // Keys live under {prefix}/services/; several deployments can share one
  // etcd under different prefixes.
  std::string prefix = "/muster";
  // When non-zero, the TTL of every instance registered through this registry
  // (replacing its ttl_seconds); 0: each instance's own.
  std::chrono::seconds ttl{0};
  // A call that finds its member unavailable is retried on the next member,
  // up to max_retries times, retry_interval apart, within its timeout.
  int max_retries = 3;
  std::chrono::milliseconds retry_interval = std::chrono::milliseconds(200);
  // etcd authentication (user and password); empty username: none.
  std::string username;
  std::string password;
  // TLS: on when `tls` is set, an endpoint is https://, or a file is given.
  // ca_file: PEM roots (empty: the system's); cert_file + key_file: a client
  // certificate.
  bool tls = false;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  // HTTP/2 keep-alive pings on idle connections, so that a dead member is
  // noticed while only watches are open (etcd accepts at most one per 5 s).
  // 0: none.
  std::chrono::milliseconds keepalive_interval = std::chrono::seconds(30);
};
absl::StatusOr<std::unique_ptr<Registry>> NewEtcdRegistry(const EtcdRegistryOptions& options);

}  // namespace muster
