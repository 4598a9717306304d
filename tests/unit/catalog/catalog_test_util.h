// Blocking wrappers around the catalog's callback API, for tests.
#pragma once

#include <future>

#include "catalog/catalog.h"
#include "catalog/local_committer.h"

namespace muster::testing {

inline absl::StatusOr<Catalog::WriteResult> RegisterSync(Catalog& catalog, Instance instance) {
  std::promise<absl::StatusOr<Catalog::WriteResult>> promise;
  auto future = promise.get_future();
  catalog.Register(std::move(instance), [&promise](absl::StatusOr<Catalog::WriteResult> r) {
    promise.set_value(std::move(r));
  });
  return future.get();
}

inline absl::StatusOr<Catalog::WriteResult> DeregisterSync(Catalog& catalog, InstanceKey key) {
  std::promise<absl::StatusOr<Catalog::WriteResult>> promise;
  auto future = promise.get_future();
  catalog.Deregister(std::move(key), [&promise](absl::StatusOr<Catalog::WriteResult> r) {
    promise.set_value(std::move(r));
  });
  return future.get();
}

inline absl::StatusOr<Catalog::WriteResult> SetCheckStateSync(Catalog& catalog, InstanceKey key,
                                                              Check check) {
  std::promise<absl::StatusOr<Catalog::WriteResult>> promise;
  auto future = promise.get_future();
  catalog.SetCheckState(std::move(key), std::move(check),
                        [&promise](absl::StatusOr<Catalog::WriteResult> r) {
                          promise.set_value(std::move(r));
                        });
  return future.get();
}

// An embedded catalog (memory only when `journal` is null) and its
// committer, whose test hooks (SweepNow, leases) the tests use.
struct EmbeddedCatalog {
  LocalCommitter* committer = nullptr;  // owned by `catalog`
  std::unique_ptr<Catalog> catalog;
};
inline EmbeddedCatalog MakeEmbedded(LocalCommitterOptions options, Journal* journal,
                                    CatalogOptions view = {}) {
  auto committer = std::make_unique<LocalCommitter>(std::move(options), journal);
  EmbeddedCatalog out;
  out.committer = committer.get();
  out.catalog = std::make_unique<Catalog>(view, std::move(committer));
  return out;
}

// A heartbeat on an embedded catalog, which always answers at once.
inline absl::StatusOr<uint32_t> HeartbeatNow(Catalog& catalog, const InstanceKey& key) {
  std::optional<absl::StatusOr<uint32_t>> answer = catalog.TryHeartbeat(key);
  if (!answer) return absl::InternalError("the write path did not answer the heartbeat at once");
  return *std::move(answer);
}

inline Instance MakeInstance(std::string service, std::string id, uint32_t ttl = 30) {
  Instance in;
  in.service = std::move(service);
  in.id = std::move(id);
  in.address = "127.0.0.1:8080";
  in.ttl_seconds = ttl;
  return in;
}

}  // namespace muster::testing
