#include "store/rocksdb_journal.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <iterator>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include "absl/base/thread_annotations.h"
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
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return chunks_.size() < capacity_; });
    chunks_.push_back(std::move(chunk));
    not_empty_.notify_one();
  }
  // Nothing more will be pushed.
  void Close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    not_empty_.notify_all();
  }
  // The next chunk; nullopt once the queue is closed and empty.
  std::optional<Chunk> Pop() {
    std::unique_lock lock(mu_);
    not_empty_.wait(lock, [&] { return !chunks_.empty() || closed_; });
    if (chunks_.empty()) return std::nullopt;
    Chunk chunk = std::move(chunks_.front());
    chunks_.pop_front();
    not_full_.notify_one();
    return chunk;
  }

 private:
  const size_t capacity_;
  std::mutex mu_;
  std::condition_variable not_full_;
  std::condition_variable not_empty_;
  std::deque<Chunk> chunks_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

absl::Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return absl::OkStatus();
  std::string msg = StrCat(what, ": ", s.ToString());
  if (s.IsIOError() || s.IsNoSpace()) return absl::UnavailableError(msg);
  if (s.IsCorruption()) return absl::DataLossError(msg);
  return absl::InternalError(msg);
}

}  // namespace

RocksDbJournal::RocksDbJournal(std::unique_ptr<rocksdb::DB> db) : db_(std::move(db)) {}

RocksDbJournal::~RocksDbJournal() {
  if (db_) {
    db_->FlushWAL(/*sync=*/true).PermitUncheckedError();
    db_->Close().PermitUncheckedError();
  }
}

absl::StatusOr<std::unique_ptr<RocksDbJournal>> RocksDbJournal::Open(const std::string& dir) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.IncreaseParallelism(2);
  options.keep_log_file_num = 4;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir, &raw);
  if (!s.ok()) return FromRocks(s, StrCat("cannot open the store in ", dir));
  return std::unique_ptr<RocksDbJournal>(new RocksDbJournal(std::unique_ptr<rocksdb::DB>(raw)));
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
  rocksdb::WriteOptions options;
  options.sync = true;
  return FromRocks(db_->Write(options, &wb), "write failed");
}

absl::StatusOr<Journal::Snapshot> RocksDbJournal::Load() {
  Snapshot snapshot;
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), kStoredRevisionKey, &value);
  if (s.ok()) {
    absl::StatusOr<uint64_t> revision = DecodeStoredRevision(value);
    if (!revision.ok()) return revision.status();
    snapshot.revision = *revision;
  } else if (!s.IsNotFound()) {
    return FromRocks(s, "cannot read the revision");
  }
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
  return FromRocks(db_->Flush(rocksdb::FlushOptions()), "flush failed");
}

}  // namespace muster
