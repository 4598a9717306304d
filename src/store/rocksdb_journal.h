// The embedded durable store: the catalog's Journal on RocksDB.
//
// Layout: "i/<namespace>\0<service>\0<id>" holds an instance as JSON, and
// "m/revision" the registry revision as a decimal number. Every commit is one
// atomic WriteBatch written with sync, so an acknowledged change survives a
// crash of the process or the machine.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "catalog/journal.h"

namespace rocksdb {
class DB;
}

namespace muster {

class RocksDbJournal final : public Journal {
 public:
  // Opens (creating when missing) the store in `dir`.
  static absl::StatusOr<std::unique_ptr<RocksDbJournal>> Open(const std::string& dir);
  ~RocksDbJournal() override;

  absl::Status Commit(const std::vector<Mutation>& batch, uint64_t revision) override;
  absl::StatusOr<Snapshot> Load() override;

  // Flushes memtables to SST files so the next start replays no log.
  absl::Status Flush();

 private:
  explicit RocksDbJournal(std::unique_ptr<rocksdb::DB> db);
  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace muster
