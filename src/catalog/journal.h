// Where the catalog makes its changes durable. The embedded store
// (store/rocksdb_journal.h) implements it; the catalog runs without one in
// memory-only mode.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "muster/instance.h"

namespace muster {

class Journal {
 public:
  virtual ~Journal() = default;

  // One change: `instance` stored under `key`, or the key deleted when null.
  struct Mutation {
    InstanceKey key;
    std::shared_ptr<const Instance> instance;
  };

  // Writes the batch and records `revision` as the registry revision, all or
  // nothing, and returns only once that is durable (synced to disk). An error
  // means nothing of the batch was written.
  virtual absl::Status Commit(const std::vector<Mutation>& batch, uint64_t revision) = 0;

  struct Snapshot {
    uint64_t revision = 0;
    std::vector<Instance> instances;
  };
  // Everything committed so far.
  virtual absl::StatusOr<Snapshot> Load() = 0;
};

}  // namespace muster
