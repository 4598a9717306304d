#include "store/rocksdb_journal.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <deque>
#include <iterator>
#include <optional>
#include <thread>
#include <utility>

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <spdlog/spdlog.h>

#include "absl/base/thread_annotations.h"
#include "core/mutex.h"
#include "core/strings.h"
#include "store/stored_value.h"

namespace muster {
namespace {

// Stored values on their way from the reader to the parsers (Load).
constexpr size_t kChunkSize = 1024;
struct Chunk {
  std::vector<std::string> keys;
  std::vector<std::string> values;
};

class ChunkQueue {
 public:
  explicit ChunkQueue(size_t capacity) : capacity_(capacity) {}

  // Waits while the queue is full.
  void Push(Chunk chunk) {
    MutexLock lock(mu_);
    while (chunks_.size() >= capacity_) not_full_.Wait(mu_);
    chunks_.push_back(std::move(chunk));
    not_empty_.NotifyOne();
  }
  // Nothing more will be pushed.
  void Close() {
    MutexLock lock(mu_);
    closed_ = true;
    not_empty_.NotifyAll();
  }
  // The next chunk; nullopt once the queue is closed and empty.
  std::optional<Chunk> Pop() {
    MutexLock lock(mu_);
    while (chunks_.empty() && !closed_) not_empty_.Wait(mu_);
    if (chunks_.empty()) return std::nullopt;
    Chunk chunk = std::move(chunks_.front());
    chunks_.pop_front();
    not_full_.NotifyOne();
    return chunk;
  }

 private:
  const size_t capacity_;
  Mutex mu_;
  CondVar not_full_;
  CondVar not_empty_;
  std::deque<Chunk> chunks_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

bool IsOutOfSpace(const rocksdb::Status& s) {
  return s.IsNoSpace() || s.subcode() == rocksdb::Status::kSpaceLimit ||
         s.ToString().find("No space left on device") != std::string::npos;
}

absl::Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = StrCat(what, ": ", s.ToString());
  if (s.IsIOError() || s.IsNoSpace()) return absl::UnavailableError(msg);
  if (s.IsCorruption()) return absl::DataLossError(msg);
  return absl::InternalError(msg);
}

std::string KiB(uint64_t bytes) { return StrCat((bytes + 1023) / 1024, " KiB"); }

// RocksDB's informational log goes to musterd's log rather than to a LOG file
// in the data directory: on a full disk a failed append to that file left its
// writer failed, and RocksDB's next log line (the one reporting the full
// disk) aborted the process on the writer's assertion.
class SpdlogLogger final : public rocksdb::Logger {
 public:
  explicit SpdlogLogger(rocksdb::InfoLogLevel level) : rocksdb::Logger(level) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    char buf[512];
    va_list copy;
    va_copy(copy, ap);
    int n = std::vsnprintf(buf, sizeof buf, format, copy);
    va_end(copy);
    if (n < 0) return;
    std::string text;
    if (static_cast<size_t>(n) < sizeof buf) {
      text.assign(buf, static_cast<size_t>(n));
    } else {
      text.resize(static_cast<size_t>(n) + 1);
      std::vsnprintf(text.data(), text.size(), format, ap);
      text.resize(static_cast<size_t>(n));
    }
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    spdlog::level::level_enum to = spdlog::level::debug;
    switch (level) {
      case rocksdb::InfoLogLevel::DEBUG_LEVEL: to = spdlog::level::trace; break;
      case rocksdb::InfoLogLevel::WARN_LEVEL: to = spdlog::level::warn; break;
      case rocksdb::InfoLogLevel::ERROR_LEVEL: to = spdlog::level::err; break;
      case rocksdb::InfoLogLevel::FATAL_LEVEL: to = spdlog::level::critical; break;
      default: break;
    }
    spdlog::log(to, "rocksdb: {}", text);
  }
};

// musterd, not RocksDB, decides when to write again after a background error
// (RocksDbJournal::ReadyToWrite); RocksDB's automatic recovery would resume
// in ways the header explains are unsafe here, and only with the memtable's
// size free (64 MiB).
class NoAutoRecovery final : public rocksdb::EventListener {
 public:
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status bg_error,
                            bool* auto_recovery) override {
    bg_error.PermitUncheckedError();
    *auto_recovery = false;
  }
};

rocksdb::Status OpenDb(const std::string& dir, rocksdb::WALRecoveryMode mode, bool read_only,
                       std::unique_ptr<rocksdb::DB>* db) {
  rocksdb::Options options;
  options.create_if_missing = !read_only;
  options.IncreaseParallelism(2);
  options.keep_log_file_num = 4;
  options.wal_recovery_mode = mode;
  options.info_log = std::make_shared<SpdlogLogger>(spdlog::should_log(spdlog::level::debug)
                                                        ? rocksdb::InfoLogLevel::INFO_LEVEL
                                                        : rocksdb::InfoLogLevel::WARN_LEVEL);
  options.listeners.push_back(std::make_shared<NoAutoRecovery>());
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = read_only ? rocksdb::DB::OpenForReadOnly(options, dir, &raw)
                                : rocksdb::DB::Open(options, dir, &raw);
  db->reset(s.ok() ? raw : nullptr);
  return s;
}

// ACKNOWLEDGED holds the revision twice, fixed width, so that a torn or
// damaged write of it reads as damaged rather than as another number.
constexpr char kAcknowledgedFile[] = "ACKNOWLEDGED";
constexpr size_t kAcknowledgedSize = 42;  // "%020u %020u\n"

std::string FormatAcknowledged(uint64_t revision) {
  char buf[kAcknowledgedSize + 1];
  std::snprintf(buf, sizeof buf, "%020" PRIu64 " %020" PRIu64 "\n", revision, revision);
  return std::string(buf, kAcknowledgedSize);
}

std::optional<uint64_t> ParseAcknowledged(std::string_view text) {
  if (text.size() != kAcknowledgedSize || text[20] != ' ' || text[41] != '\n') return std::nullopt;
  if (text.substr(0, 20) != text.substr(21, 20)) return std::nullopt;
  uint64_t revision = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + 20, revision);
  if (ec != std::errc() || end != text.data() + 20) return std::nullopt;
  return revision;
}

}  // namespace

RocksDbJournal::RocksDbJournal(std::string dir, RocksDbJournalOptions options)
    : dir_(std::move(dir)), options_(options) {}

RocksDbJournal::~RocksDbJournal() {
  // No FlushWAL: every commit is synced, and syncing a log whose writer
  // failed is one of the calls that abort inside RocksDB.
  CloseDb();
  if (acknowledged_fd_ >= 0) close(acknowledged_fd_);
}

absl::StatusOr<std::unique_ptr<RocksDbJournal>> RocksDbJournal::Open(
    const std::string& dir, RocksDbJournalOptions options) {
  std::unique_ptr<RocksDbJournal> journal(new RocksDbJournal(dir, options));
  if (absl::Status s = journal->OpenStore(); !s.ok()) return s;
  return journal;
}

void RocksDbJournal::CloseDb() {
  if (db_ == nullptr) return;
  // Close reports a write that failed before; the files are as they are.
  db_->Close().PermitUncheckedError();
  db_.reset();
}

absl::Status RocksDbJournal::OpenStore() {
  // Created here rather than by RocksDB, which logs an error when it has to.
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) {
    return absl::UnavailableError(
        StrCat("cannot open the store in ", dir_, ": cannot create the directory: ", ec.message()));
  }
  std::optional<uint64_t> acknowledged;
  if (absl::Status s = OpenAcknowledged(&acknowledged); !s.ok()) return s;

  // Opens for writing, or read-only when the disk has no room for what an
  // open writes (a new MANIFEST, OPTIONS, a log, the flushed memtable).
  auto open = [&](rocksdb::WALRecoveryMode mode) {
    read_only_ = false;
    state_ = State::kWritable;
    rocksdb::Status s = OpenDb(dir_, mode, false, &db_);
    if (IsOutOfSpace(s)) {
      Space space = FreeSpace();
      spdlog::warn("the disk under --data-dir ({}) is full ({} free): the store is opened "
                   "read-only; writes are refused until {} are free",
                   dir_, KiB(space.free), KiB(ResumeFree(space)));
      s = OpenDb(dir_, mode, true, &db_);
      read_only_ = true;
      state_ = State::kFull;
    }
    return s;
  };
  const std::string damaged_help = StrCat(
      "To keep what precedes the damage and accept the loss, start musterd once with "
      "--recover=point-in-time (copy ", dir_, " first to keep the damaged log); or restore "
      "the directory from a backup.");

  // A torn last record (a write cut short by a crash) is no damage, a record
  // before it that fails its checksum is: kTolerateCorruptedTailRecords
  // refuses to open only then.
  rocksdb::Status s = open(rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords);
  std::string damage;  // the damage found, when it is accepted
  bool loss_accepted = false;
  if (s.IsCorruption()) {
    damage = s.ToString();
    // What precedes the damage, seen read-only so that a refusal changes nothing.
    s = OpenDb(dir_, rocksdb::WALRecoveryMode::kPointInTimeRecovery, true, &db_);
    if (!s.ok()) {
      return FromRocks(s, StrCat("the store in ", dir_, " is damaged (", damage,
                                 ") and cannot be read"));
    }
    absl::StatusOr<uint64_t> stored = StoredRevision();
    CloseDb();
    if (!stored.ok()) return stored.status();
    const bool lost = !acknowledged.has_value() || *stored < *acknowledged;
    if (lost && options_.recovery == RocksDbJournalOptions::Recovery::kStrict) {
      if (!acknowledged.has_value()) {
        return absl::DataLossError(StrCat(
            "the write-ahead log of the store in ", dir_, " is damaged (", damage,
            ") and there is no record of the last acknowledged revision (", kAcknowledgedFile,
            "), so musterd cannot tell whether acknowledged changes are lost; what precedes "
            "the damage ends at revision ", *stored, ". musterd does not start. ", damaged_help));
      }
      return absl::DataLossError(StrCat(
          "the write-ahead log of the store in ", dir_, " is damaged (", damage,
          "): what precedes the damage ends at revision ", *stored, " but revision ",
          *acknowledged, " was acknowledged, so up to ", *acknowledged - *stored,
          " acknowledged changes would be lost. musterd does not start. ", damaged_help));
    }
    loss_accepted = lost;
    if (!lost) {
      spdlog::warn("the write-ahead log of the store in {} has a damaged record ({}) after "
                   "every acknowledged change (revision {}): dropped, as a write a crash cut "
                   "short", dir_, damage, *acknowledged);
    }
    s = open(rocksdb::WALRecoveryMode::kPointInTimeRecovery);
  }
  if (!s.ok()) return FromRocks(s, StrCat("cannot open the store in ", dir_));

  absl::StatusOr<uint64_t> stored = StoredRevision();
  if (!stored.ok()) return stored.status();
  if (acknowledged.has_value() && *stored < *acknowledged) {
    if (options_.recovery == RocksDbJournalOptions::Recovery::kStrict) {
      CloseDb();
      return absl::DataLossError(StrCat(
          "acknowledged changes are missing from the store in ", dir_, ": it ends at revision ",
          *stored, " but revision ", *acknowledged, " was acknowledged (the write-ahead log was "
          "truncated, removed or replaced), so up to ", *acknowledged - *stored,
          " acknowledged changes are lost. musterd does not start. ", damaged_help));
    }
    loss_accepted = true;
  }
  committed_ = *stored;
  if (loss_accepted) {
    // Clients saw revisions up to the acknowledged one: continue after it, so
    // that a revision never means two different changes, and a watcher
    // resuming from one it saw is told to list again.
    const uint64_t floor = acknowledged.value_or(*stored) + 1;
    spdlog::warn("--recover=point-in-time: the store in {} is recovered to revision {} ({}); "
                 "changes after it{} are lost; the registry revision is set to {}, past every "
                 "one clients saw",
                 dir_, *stored, damage.empty() ? "the log ends there" : damage,
                 acknowledged ? StrCat(" up to the acknowledged revision ", *acknowledged) : "",
                 floor);
    revision_floor_ = floor;
    if (!read_only_) {
      // Recorded, so that the next start finds the loss accepted.
      if (absl::Status w = WriteRevision(floor); !w.ok()) return w;
      committed_ = floor;
    }
  }
  if (!acknowledged.has_value() || loss_accepted) {
    // A new store (or one written before ACKNOWLEDGED existed) starts the record.
    RecordAcknowledged(committed_, /*sync=*/true).IgnoreError();
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> RocksDbJournal::StoredRevision() {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), kStoredRevisionKey, &value);
  if (s.IsNotFound()) return 0;
  if (!s.ok()) return FromRocks(s, "cannot read the revision");
  return DecodeStoredRevision(value);
}

absl::Status RocksDbJournal::WriteRevision(uint64_t revision) {
  rocksdb::WriteOptions options;
  options.sync = true;
  return FromRocks(db_->Put(options, kStoredRevisionKey, StoredRevisionValue(revision)),
                   "cannot write the revision");
}

absl::Status RocksDbJournal::OpenAcknowledged(std::optional<uint64_t>* acknowledged) {
  const std::string path = StrCat(dir_, "/", kAcknowledgedFile);
  acknowledged_fd_ = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (acknowledged_fd_ < 0) {
    return absl::UnavailableError(StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  char buf[kAcknowledgedSize + 8];
  ssize_t n = pread(acknowledged_fd_, buf, sizeof buf, 0);
  if (n < 0) {
    return absl::UnavailableError(StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  if (n == 0) return absl::OkStatus();  // new
  *acknowledged = ParseAcknowledged(std::string_view(buf, static_cast<size_t>(n)));
  if (!acknowledged->has_value()) {
    spdlog::warn("{} is damaged and is ignored: this start cannot check that no acknowledged "
                 "change is missing", path);
  }
  return absl::OkStatus();
}

absl::Status RocksDbJournal::RecordAcknowledged(uint64_t revision, bool sync) {
  const std::string text = FormatAcknowledged(revision);
  ssize_t n = pwrite(acknowledged_fd_, text.data(), text.size(), 0);
  bool ok = n == static_cast<ssize_t>(text.size()) && (!sync || fdatasync(acknowledged_fd_) == 0);
  if (!ok) {
    const int err = n < 0 || sync ? errno : ENOSPC;
    if (!acknowledged_failing_) {
      spdlog::warn("cannot record the acknowledged revision in {}/{}: {} (the change itself "
                   "is durable; until this works a damaged log may go unnoticed at start)",
                   dir_, kAcknowledgedFile, std::strerror(err));
    }
    acknowledged_failing_ = true;
    return absl::UnavailableError(std::strerror(err));
  }
  if (acknowledged_failing_) spdlog::info("the acknowledged revision is recorded again");
  acknowledged_failing_ = false;
  return absl::OkStatus();
}

RocksDbJournal::Space RocksDbJournal::FreeSpace() const {
  Space space;
  struct statvfs st;
  if (statvfs(dir_.c_str(), &st) != 0) return space;
  space.known = true;
  space.free = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  space.total = static_cast<uint64_t>(st.f_blocks) * st.f_frsize;
  return space;
}

uint64_t RocksDbJournal::MinFree(const Space& space) const {
  if (options_.min_free_bytes >= 0) return static_cast<uint64_t>(options_.min_free_bytes);
  return std::clamp<uint64_t>(space.total / 64, uint64_t{64} << 10, uint64_t{64} << 20);
}

absl::Status RocksDbJournal::DiskFull(const Space& space) const {
  if (!space.known) {
    return absl::UnavailableError(StrCat(
        "the disk under --data-dir (", dir_, ") is full; writes resume by themselves once it has room"));
  }
  return absl::UnavailableError(StrCat(
      "the disk under --data-dir (", dir_, ") is full: ", KiB(space.free), " free of ",
      KiB(space.total), "; writes resume by themselves once ", KiB(ResumeFree(space)),
      " are free (reads, watches and heartbeats go on)"));
}

absl::Status RocksDbJournal::Reopen() {
  CloseDb();
  read_only_ = false;
  rocksdb::Status s =
      OpenDb(dir_, rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords, false, &db_);
  if (!s.ok()) {
    absl::Status status = FromRocks(s, StrCat("cannot open the store in ", dir_, " again"));
    if (IsOutOfSpace(s)) return absl::ResourceExhaustedError(status.message());
    return status;
  }
  absl::StatusOr<uint64_t> stored = StoredRevision();
  if (stored.ok() && *stored == committed_) return absl::OkStatus();
  // The failed write reached the log after all (say its sync failed after
  // the append): the store holds a change the catalog reported as failed
  // and does not hold. Writing on would give its revision to another change.
  CloseDb();
  state_ = State::kStuck;
  failure_ = StrCat("the store in ", dir_, " opened again at revision ",
                    stored.ok() ? StrCat(*stored) : std::string(stored.status().message()),
                    " while musterd holds revision ", committed_,
                    " (a write reported as failed reached the disk after all); restart musterd "
                    "to load the store as it is");
  spdlog::error("{}", failure_);
  return absl::UnavailableError(failure_);
}

void RocksDbJournal::ReopenFailed(std::chrono::steady_clock::time_point now) {
  next_reopen_ = now + reopen_interval_;
  reopen_interval_ = std::min(2 * reopen_interval_, kMaxReopenInterval);
}

absl::Status RocksDbJournal::ReadyToWrite(size_t bytes) {
  const auto now = std::chrono::steady_clock::now();
  switch (state_) {
    case State::kWritable:
      break;
    case State::kStuck:
      return absl::UnavailableError(failure_);
    case State::kFailed: {
      if (now < next_reopen_) return absl::UnavailableError(failure_);
      if (absl::Status s = Reopen(); !s.ok()) {
        ReopenFailed(now);
        if (state_ == State::kStuck) return s;
        return absl::UnavailableError(StrCat(failure_, " (opening it again: ", s.message(), ")"));
      }
      reopen_interval_ = kReopenInterval;
      spdlog::info("the store in {} is open again: writes resume", dir_);
      state_ = State::kWritable;
      break;
    }
    case State::kFull: {
      Space space = FreeSpace();
      if (space.known && space.free < ResumeFree(space)) return DiskFull(space);
      if (db_ == nullptr || read_only_) {
        if (now < next_reopen_) return DiskFull(space);
        if (absl::Status s = Reopen(); !s.ok()) {
          ReopenFailed(now);
          if (state_ == State::kStuck) return s;
          return absl::UnavailableError(StrCat(DiskFull(space).message(), " (", s.message(), ")"));
        }
      }
      reopen_interval_ = kReopenInterval;
      spdlog::info("the disk under --data-dir ({}) has room again ({} free): writes resume", dir_,
                   KiB(space.free));
      state_ = State::kWritable;
      break;
    }
  }
  const Space space = FreeSpace();
  const uint64_t min_free = MinFree(space);
  if (space.known && min_free > 0 && space.free < min_free + bytes) {
    state_ = State::kFull;
    spdlog::warn("the disk under --data-dir ({}) is full: {} free of {}, musterd keeps {} "
                 "free; writes are refused until {} are free (reads, watches and heartbeats go on)",
                 dir_, KiB(space.free), KiB(space.total), KiB(min_free), KiB(ResumeFree(space)));
    return DiskFull(space);
  }
  return absl::OkStatus();
}

absl::Status RocksDbJournal::WriteFailed(const rocksdb::Status& s) {
  // RocksDB's recovery from this state (Resume) can keep the failed log
  // writer (see the header); a closed store opened again starts a new log.
  CloseDb();
  // A full disk is opened again as soon as it has room (ReadyToWrite checks);
  // another failure after a pause.
  next_reopen_ = std::chrono::steady_clock::now() +
                 (IsOutOfSpace(s) ? std::chrono::seconds(0) : kReopenInterval);
  reopen_interval_ = kReopenInterval;
  if (IsOutOfSpace(s)) {
    state_ = State::kFull;
    Space space = FreeSpace();
    spdlog::warn("the disk under --data-dir ({}) is full ({}): writes are refused until {} are "
                 "free (reads, watches and heartbeats go on)",
                 dir_, s.ToString(), KiB(ResumeFree(space)));
    return DiskFull(space);
  }
  state_ = State::kFailed;
  failure_ = StrCat("the store in ", dir_, " failed to write (", s.ToString(),
                    "); musterd tries to open it again (after 1 s, then less often, up to "
                    "every 10 s) and writes resume once that works");
  spdlog::error("{}", failure_);
  return absl::UnavailableError(failure_);
}

absl::Status RocksDbJournal::Commit(const std::vector<Mutation>& batch, uint64_t revision) {
  rocksdb::WriteBatch wb;
  for (const Mutation& m : batch) {
    std::string key = StoredInstanceKey(m.key);
    rocksdb::Status s = m.instance ? wb.Put(key, StoredInstanceValue(*m.instance)) : wb.Delete(key);
    if (!s.ok()) return FromRocks(s, "cannot build the write batch");
  }
  rocksdb::Status s = wb.Put(kStoredRevisionKey, StoredRevisionValue(revision));
  if (!s.ok()) return FromRocks(s, "cannot build the write batch");
  if (absl::Status ready = ReadyToWrite(wb.GetDataSize()); !ready.ok()) return ready;
  rocksdb::WriteOptions options;
  options.sync = true;
  s = db_->Write(options, &wb);
  if (!s.ok()) return WriteFailed(s);
  committed_ = revision;
  // After the sync: ACKNOWLEDGED never runs ahead of the log.
  RecordAcknowledged(revision, /*sync=*/false).IgnoreError();
  return absl::OkStatus();
}

absl::StatusOr<Journal::Snapshot> RocksDbJournal::Load() {
  Snapshot snapshot;
  absl::StatusOr<uint64_t> stored = StoredRevision();
  if (!stored.ok()) return stored.status();
  snapshot.revision = std::max(*stored, revision_floor_);
  // Parsing the stored JSON is most of a restart's work, so it runs on every
  // core while this thread reads on: the reader hands chunks of values to
  // the parsers through a short queue (which bounds what is held unparsed).
  const size_t parsers = std::max(1u, std::thread::hardware_concurrency());
  ChunkQueue queue(2 * parsers);
  std::vector<std::vector<Instance>> parsed(parsers);
  std::vector<absl::Status> failed(parsers);
  std::vector<std::thread> threads;
  threads.reserve(parsers);
  for (size_t p = 0; p < parsers; ++p) {
    threads.emplace_back([&queue, out = &parsed[p], status = &failed[p]] {
      while (std::optional<Chunk> chunk = queue.Pop()) {
        if (!status->ok()) continue;  // drain: the load has failed
        for (size_t i = 0; i < chunk->values.size(); ++i) {
          auto instance = DecodeStoredInstance(chunk->keys[i], chunk->values[i]);
          if (!instance.ok()) {
            *status = instance.status();
            break;
          }
          out->push_back(*std::move(instance));
        }
      }
    });
  }
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  const rocksdb::Slice prefix(kStoredInstancePrefix.data(), kStoredInstancePrefix.size());
  Chunk chunk;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    chunk.keys.emplace_back(it->key().ToStringView());
    chunk.values.emplace_back(it->value().ToStringView());
    if (chunk.values.size() == kChunkSize) queue.Push(std::exchange(chunk, Chunk{}));
  }
  if (!chunk.values.empty()) queue.Push(std::move(chunk));
  queue.Close();
  for (std::thread& t : threads) t.join();
  if (!it->status().ok()) return FromRocks(it->status(), "cannot read the store");
  for (const absl::Status& parse_status : failed) {
    if (!parse_status.ok()) return parse_status;
  }
  size_t total = 0;
  for (const auto& part : parsed) total += part.size();
  snapshot.instances.reserve(total);
  for (auto& part : parsed) {
    std::move(part.begin(), part.end(), std::back_inserter(snapshot.instances));
    std::vector<Instance>().swap(part);
  }
  return snapshot;
}

absl::Status RocksDbJournal::Flush() {
  if (db_ == nullptr || read_only_ || state_ != State::kWritable) {
    spdlog::info("the store is not writable now; the next start replays its log");
    return absl::OkStatus();
  }
  rocksdb::Status s = db_->Flush(rocksdb::FlushOptions());
  if (IsOutOfSpace(s)) {
    spdlog::warn("no room to flush the store ({}); the next start replays its log", s.ToString());
    CloseDb();
    state_ = State::kFull;
    return absl::OkStatus();
  }
  return FromRocks(s, "flush failed");
}

}  // namespace muster
