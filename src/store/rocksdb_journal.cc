#include "store/rocksdb_journal.h"

#include <charconv>

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include "core/strings.h"
#include "core/json_codec.h"

namespace muster {
namespace {

constexpr std::string_view kInstancePrefix = "i/";
constexpr std::string_view kRevisionKey = "m/revision";

std::string InstanceKeyBytes(const InstanceKey& key) {
  std::string out;
  out.reserve(kInstancePrefix.size() + key.ns.size() + key.service.size() + key.id.size() + 2);
  out.append(kInstancePrefix).append(key.ns).push_back('\0');
  out.append(key.service).push_back('\0');
  out.append(key.id);
  return out;
}

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
    std::string key = InstanceKeyBytes(m.key);
    rocksdb::Status s = m.instance ? wb.Put(key, SerializeInstance(*m.instance)) : wb.Delete(key);
    if (!s.ok()) return FromRocks(s, "cannot build the write batch");
  }
  rocksdb::Status s = wb.Put(kRevisionKey, StrCat(revision));
  if (!s.ok()) return FromRocks(s, "cannot build the write batch");
  rocksdb::WriteOptions options;
  options.sync = true;
  return FromRocks(db_->Write(options, &wb), "write failed");
}

absl::StatusOr<Journal::Snapshot> RocksDbJournal::Load() {
  Snapshot snapshot;
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), kRevisionKey, &value);
  if (s.ok()) {
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), snapshot.revision);
    if (ec != std::errc() || end != value.data() + value.size()) {
      return absl::DataLossError(StrCat("bad stored revision \"", value, "\""));
    }
  } else if (!s.IsNotFound()) {
    return FromRocks(s, "cannot read the revision");
  }
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(rocksdb::Slice(kInstancePrefix.data(), kInstancePrefix.size()));
       it->Valid() && it->key().starts_with(
                          rocksdb::Slice(kInstancePrefix.data(), kInstancePrefix.size()));
       it->Next()) {
    auto instance = ParseInstance(it->value().ToStringView());
    if (!instance.ok()) {
      return absl::DataLossError(StrCat("bad stored instance under key ",
                                              it->key().ToString(true), ": ",
                                              instance.status().message()));
    }
    snapshot.instances.push_back(*std::move(instance));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "cannot read the store");
  return snapshot;
}

absl::Status RocksDbJournal::Flush() {
  return FromRocks(db_->Flush(rocksdb::FlushOptions()), "flush failed");
}

}  // namespace muster
