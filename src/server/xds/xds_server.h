// musterd's xDS server: the AggregatedDiscoveryService of Envoy's data-plane
// API v3 (state of the world), so that any gRPC client dialing
// xds:///SERVICE follows the healthy instances of SERVICE, pushed as they
// change (docs/grpc.md; the resources are in xds_resources.h).
//
// Every stream serves from this node's CatalogView: in cluster mode each node
// serves its own view. A change to a service a stream follows (registration,
// deregistration, expiry, health, weight or status) reaches it through the
// watch hub, not by polling: the stream is sent a new ClusterLoadAssignment
// for it, built once per service revision and shared by every stream that
// follows it.
//
// Example:
//   XdsOptions options;
//   options.listen = "127.0.0.1:8471";
//   auto xds = XdsServer::Start(std::move(options), catalog);
//   if (!xds.ok()) return Fail(xds.status());
//   spdlog::info("xDS on {}", (*xds)->address());
//   ...
//   (*xds)->Stop();
//
// Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "catalog/catalog_view.h"
#include "core/limits.h"

namespace muster::xds {

struct XdsOptions {
  std::string listen;  // host:port; port 0 picks a free one
  // The metadata key whose value becomes an endpoint's locality zone.
  std::string zone_key = "zone";
  // Streams open at once; more are refused with RESOURCE_EXHAUSTED.
  size_t max_streams = 10000;
  // Resource names one stream may follow, per type.
  size_t max_names_per_stream = 1024;
  // The largest DiscoveryRequest taken.
  size_t max_request_bytes = 1 << 20;
  Limits limits;
};

// Counts since start (streams: open now).
struct XdsStats {
  uint64_t streams = 0;
  uint64_t streams_total = 0;
  uint64_t streams_refused = 0;
  uint64_t requests = 0;
  uint64_t responses = 0;
  uint64_t acks = 0;
  uint64_t nacks = 0;
};

class XdsShared;

class XdsServer {
 public:
  // Listens and serves until Stop. `catalog` must outlive the server.
  // InvalidArgument for a malformed address, Unavailable when it cannot be
  // bound.
  static absl::StatusOr<std::unique_ptr<XdsServer>> Start(XdsOptions options,
                                                          CatalogView& catalog);
  ~XdsServer();
  XdsServer(const XdsServer&) = delete;
  XdsServer& operator=(const XdsServer&) = delete;

  // host:port actually bound.
  const std::string& address() const { return address_; }
  XdsStats stats() const;

  // Ends every stream (the clients reconnect elsewhere or later) and stops
  // listening. Idempotent; the destructor calls it.
  void Stop();

 private:
  struct Impl;
  explicit XdsServer(std::unique_ptr<Impl> impl, std::string address);

  std::unique_ptr<Impl> impl_;
  const std::string address_;
};

}  // namespace muster::xds
