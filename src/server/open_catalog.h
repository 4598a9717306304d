// The catalog musterd serves, with the store behind it as configured: the
// embedded store (RocksDB under --data-dir, LocalCommitter) or etcd
// (--store etcd, ClusterWriter). This is the one place that picks; everything
// after it talks to the Catalog alone.
#pragma once

#include <memory>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "catalog/catalog.h"
#include "server/config.h"

namespace muster {

struct OpenedCatalog {
  // The store, kept alive for as long as the catalog (declared first, so it
  // is destroyed last).
  std::shared_ptr<void> store;
  std::unique_ptr<Catalog> catalog;
  // Once the catalog has stopped: makes what the store holds durable (the
  // embedded store flushes its log). Null when there is nothing to do.
  absl::AnyInvocable<absl::Status() &&> close;
};

// Opens the configured store and starts the catalog on it (loaded, or
// following etcd). The error says what could not be opened and why.
absl::StatusOr<OpenedCatalog> OpenCatalog(const ServerConfig& config);

}  // namespace muster
