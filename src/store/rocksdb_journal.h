// The embedded durable store: the catalog's Journal on RocksDB.
//
// Layout: "i/<namespace>\0<service>\0<id>" holds an instance as JSON, and
// "m/revision" the registry revision as a decimal number. Every commit is one
// atomic WriteBatch written with sync, so an acknowledged change survives a
// crash of the process or the machine.
//
// Beside RocksDB's files the directory holds ACKNOWLEDGED, the last revision
// a commit made durable (written after each commit, not synced: it survives a
// crash of the process, and after a power loss it can only be behind). At open
// the store's revision must reach it; when it does not, the write-ahead log
// lost acknowledged changes (damaged or truncated) and Open refuses, unless
// the loss is accepted with Recovery::kPointInTime.
//
// A full disk (docs/operations.md): a commit is refused with Unavailable,
// before RocksDB is asked, while less than `min_free_bytes` plus the batch
// would remain free; and when RocksDB itself fails to write (the disk filled
// behind musterd's back, or any other I/O error) the database is closed and
// later opened again. Commits resume by themselves once the disk has room
// again (twice the minimum). RocksDB's own recovery (DB::Resume) is not used:
// after a failed write-ahead-log append with an empty memtable it keeps the
// failed log writer, whose next append aborts the process in Debian's build
// (assertions on). A store that cannot be opened for writing on a full disk
// is opened read-only, so a start on a full disk still loads and serves.
//
// Commit, Load and Flush are called by one thread at a time (the catalog's
// committer, and the start-up and shutdown code before and after it).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "catalog/journal.h"

namespace rocksdb {
class DB;
class Status;
}  // namespace rocksdb

namespace muster {

struct RocksDbJournalOptions {
  // What Open does when the write-ahead log is damaged.
  enum class Recovery {
    // Refuse to open when acknowledged changes are missing or a record before
    // the log's tail is damaged (a torn last record, a write a crash cut
    // short, is fine: it was never acknowledged).
    kStrict,
    // Open with what precedes the damage and record the loss as accepted; the
    // revision continues after the last acknowledged one, so it never goes back.
    kPointInTime,
  };
  Recovery recovery = Recovery::kStrict;
  // Commits are refused while less than this (plus the batch) would remain
  // free on the disk; -1: 1/64 of the file system, at least 64 KiB and at most
  // 64 MiB; 0: none (commits go on until the disk itself refuses one).
  int64_t min_free_bytes = -1;
};

class RocksDbJournal final : public Journal {
 public:
  // Opens (creating when missing) the store in `dir`. DataLoss when the
  // write-ahead log is damaged (see RocksDbJournalOptions::Recovery), with a
  // message that says what is damaged and how to proceed.
  static absl::StatusOr<std::unique_ptr<RocksDbJournal>> Open(const std::string& dir,
                                                              RocksDbJournalOptions options = {});
  ~RocksDbJournal() override;

  absl::Status Commit(const std::vector<Mutation>& batch, uint64_t revision) override;
  absl::StatusOr<Snapshot> Load() override;

  // Flushes memtables to SST files so the next start replays no log. Nothing
  // to do (OK) while the disk is full: the log holds every change.
  absl::Status Flush();

 private:
  // A store closed after a failure is tried again after kReopenInterval,
  // then (while that fails) at doubling intervals up to kMaxReopenInterval.
  static constexpr std::chrono::seconds kReopenInterval{1};
  static constexpr std::chrono::seconds kMaxReopenInterval{10};

  enum class State {
    kWritable,
    kFull,    // too little free space; db_ may be open, read-only or closed
    kFailed,  // a write failed for another reason; db_ is closed
    kStuck,   // reopened with a revision other than the last committed one
  };
  struct Space {
    bool known = false;
    uint64_t free = 0;   // bytes available
    uint64_t total = 0;  // size of the file system
  };

  RocksDbJournal(std::string dir, RocksDbJournalOptions options);

  // Opens db_ (read-write, or read-only when the disk is too full for that),
  // checks it against ACKNOWLEDGED and applies options_.recovery.
  absl::Status OpenStore();
  // Opens db_ for writing again after a failure; the store must hold exactly
  // the revision last committed.
  absl::Status Reopen();
  void CloseDb();
  // The revision stored in db_ (0 when none).
  absl::StatusOr<uint64_t> StoredRevision();
  absl::Status WriteRevision(uint64_t revision);

  // OK when a batch of `bytes` may be written now; else the reason it may not.
  absl::Status ReadyToWrite(size_t bytes);
  // Handles a failed write: closes db_ and picks the state.
  absl::Status WriteFailed(const rocksdb::Status& s);
  // Schedules the next try after a failed Reopen.
  void ReopenFailed(std::chrono::steady_clock::time_point now);
  Space FreeSpace() const;
  uint64_t MinFree(const Space& space) const;
  // Free space at which refused commits resume.
  uint64_t ResumeFree(const Space& space) const {
    return std::max<uint64_t>(2 * MinFree(space), uint64_t{64} << 10);
  }
  absl::Status DiskFull(const Space& space) const;

  // ACKNOWLEDGED.
  absl::Status OpenAcknowledged(std::optional<uint64_t>* acknowledged);
  absl::Status RecordAcknowledged(uint64_t revision, bool sync);

  const std::string dir_;
  const RocksDbJournalOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
  bool read_only_ = false;
  State state_ = State::kWritable;
  std::string failure_;  // kFailed, kStuck: what went wrong
  std::chrono::steady_clock::time_point next_reopen_{};
  std::chrono::seconds reopen_interval_ = kReopenInterval;
  uint64_t committed_ = 0;  // the revision last made durable (or loaded)
  uint64_t revision_floor_ = 0;  // Load's revision is at least this (an accepted loss)
  int acknowledged_fd_ = -1;
  bool acknowledged_failing_ = false;  // a write of ACKNOWLEDGED failed (logged once)
};

}  // namespace muster
