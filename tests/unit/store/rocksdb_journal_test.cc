#include "store/rocksdb_journal.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include "support/status_matchers.h"

namespace muster {
namespace {

using muster::testing::IsOk;
using muster::testing::StatusIs;

class RocksDbJournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("muster-store-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static std::shared_ptr<const Instance> Make(std::string id, uint64_t rev) {
    auto in = std::make_shared<Instance>();
    in->service = "orders";
    in->id = std::move(id);
    in->address = "127.0.0.1:80";
    in->metadata["k"] = "v";
    in->create_revision = in->modify_revision = rev;
    return in;
  }

  std::filesystem::path dir_;
};

// An empty store loads as revision 0 with no instances.
TEST_F(RocksDbJournalTest, EmptyStoreLoadsEmpty) {
  auto journal = RocksDbJournal::Open(dir_.string());
  ASSERT_THAT(journal.status(), IsOk());
  auto snapshot = (*journal)->Load();
  ASSERT_THAT(snapshot.status(), IsOk());
  EXPECT_EQ(snapshot->revision, 0u);
  EXPECT_TRUE(snapshot->instances.empty());
}

// Puts and deletes survive closing and reopening, with the revision.
TEST_F(RocksDbJournalTest, CommitsSurviveReopen) {
  {
    auto journal = *RocksDbJournal::Open(dir_.string());
    ASSERT_THAT(journal->Commit({{{"default", "orders", "a"}, Make("a", 1)},
                                 {{"default", "orders", "b"}, Make("b", 2)}},
                                2),
                IsOk());
    ASSERT_THAT(journal->Commit({{{"default", "orders", "a"}, nullptr}}, 3), IsOk());
  }
  auto journal = *RocksDbJournal::Open(dir_.string());
  auto snapshot = journal->Load();
  ASSERT_THAT(snapshot.status(), IsOk());
  EXPECT_EQ(snapshot->revision, 3u);
  ASSERT_EQ(snapshot->instances.size(), 1u);
  const Instance& b = snapshot->instances[0];
  EXPECT_EQ(b.id, "b");
  EXPECT_EQ(b.modify_revision, 2u);
  EXPECT_EQ(b.metadata.at("k"), "v");
  EXPECT_TRUE(b.SameSpec(*Make("b", 2)));
}

// Loading parses on several threads, in chunks: a store of many chunks loads
// every instance exactly once, whatever the order.
TEST_F(RocksDbJournalTest, ManyInstancesLoadEachOnce) {
  constexpr int kCount = 5000;  // several of the loader's chunks
  {
    auto journal = *RocksDbJournal::Open(dir_.string());
    std::vector<Journal::Mutation> batch;
    for (int i = 0; i < kCount; ++i) {
      std::string id = "i-" + std::to_string(i);
      batch.push_back({{"default", "orders", id}, Make(id, static_cast<uint64_t>(i + 1))});
    }
    ASSERT_THAT(journal->Commit(batch, kCount), IsOk());
  }
  auto journal = *RocksDbJournal::Open(dir_.string());
  auto snapshot = journal->Load();
  ASSERT_THAT(snapshot.status(), IsOk());
  EXPECT_EQ(snapshot->revision, static_cast<uint64_t>(kCount));
  ASSERT_EQ(snapshot->instances.size(), static_cast<size_t>(kCount));
  std::set<std::string> ids;
  for (const Instance& in : snapshot->instances) {
    // Each instance is whole: its revision matches its id.
    EXPECT_EQ("i-" + std::to_string(in.modify_revision - 1), in.id);
    ids.insert(in.id);
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kCount));
}

// A stored value that is not an instance fails the load with DataLoss naming
// its key (the store is not half loaded).
TEST_F(RocksDbJournalTest, CorruptValueIsDataLoss) {
  {
    auto journal = *RocksDbJournal::Open(dir_.string());
    std::vector<Journal::Mutation> batch;
    for (int i = 0; i < 3000; ++i) {
      std::string id = "i-" + std::to_string(i);
      batch.push_back({{"default", "orders", id}, Make(id, 1)});
    }
    ASSERT_THAT(journal->Commit(batch, 1), IsOk());
  }
  {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir_.string(), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), std::string("i/default\0orders\0i-2000", 23),
                        "{not json").ok());
  }
  auto journal = *RocksDbJournal::Open(dir_.string());
  auto snapshot = journal->Load();
  EXPECT_THAT(snapshot.status(), StatusIs(absl::StatusCode::kDataLoss,
                                          ::testing::HasSubstr("bad stored instance under key")));
}

// A store directory that cannot be created is a clear error, not a crash.
TEST_F(RocksDbJournalTest, UnopenableDirectoryIsAnError) {
  auto journal = RocksDbJournal::Open("/proc/muster-cannot-be-here");
  EXPECT_FALSE(journal.ok());
  EXPECT_THAT(journal.status().message(), ::testing::HasSubstr("cannot open the store"));
}

// Commits 1..`count`, one instance each, and closes the journal (the
// changes stay in the write-ahead log: nothing is flushed).
void CommitMany(const std::string& dir, int count) {
  auto journal = RocksDbJournal::Open(dir);
  ASSERT_THAT(journal.status(), IsOk());
  for (int i = 1; i <= count; ++i) {
    std::string id = "i-" + std::to_string(i);
    auto in = std::make_shared<Instance>();
    in->service = "orders";
    in->id = id;
    in->address = "127.0.0.1:80";
    in->create_revision = in->modify_revision = static_cast<uint64_t>(i);
    ASSERT_THAT((*journal)->Commit({{{"default", "orders", id}, in}}, static_cast<uint64_t>(i)), IsOk());
  }
}

std::filesystem::path OnlyLog(const std::filesystem::path& dir) {
  std::filesystem::path log;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".log" && entry.file_size() > 0) log = entry.path();
  }
  return log;
}

// A log cut to half loses acknowledged changes although RocksDB takes the cut
// for a torn tail: the open refuses (DataLoss, naming the revisions and the
// way out); Recovery::kPointInTime opens with what is left and continues the
// revision after the last acknowledged one, and that is recorded.
TEST_F(RocksDbJournalTest, TruncatedLogIsDataLossUnlessRecovered) {
  CommitMany(dir_.string(), 200);
  const std::filesystem::path log = OnlyLog(dir_);
  ASSERT_FALSE(log.empty());
  std::filesystem::resize_file(log, std::filesystem::file_size(log) / 2);

  auto refused = RocksDbJournal::Open(dir_.string());
  EXPECT_THAT(refused.status(),
              StatusIs(absl::StatusCode::kDataLoss,
                       ::testing::AllOf(::testing::HasSubstr("revision 200 was acknowledged"),
                                        ::testing::HasSubstr("--recover=point-in-time"))));

  RocksDbJournalOptions recover;
  recover.recovery = RocksDbJournalOptions::Recovery::kPointInTime;
  {
    auto journal = RocksDbJournal::Open(dir_.string(), recover);
    ASSERT_THAT(journal.status(), IsOk());
    auto snapshot = (*journal)->Load();
    ASSERT_THAT(snapshot.status(), IsOk());
    EXPECT_LT(snapshot->instances.size(), 200u);
    EXPECT_GT(snapshot->instances.size(), 0u);
    EXPECT_EQ(snapshot->revision, 201u);
  }
  // Accepted once: a strict open now succeeds at the same revision.
  auto journal = RocksDbJournal::Open(dir_.string());
  ASSERT_THAT(journal.status(), IsOk());
  EXPECT_EQ((*journal)->Load()->revision, 201u);
}

// Bytes flipped in the middle of the log: DataLoss, not a silent half store.
TEST_F(RocksDbJournalTest, DamagedLogIsDataLoss) {
  CommitMany(dir_.string(), 200);
  const std::filesystem::path log = OnlyLog(dir_);
  ASSERT_FALSE(log.empty());
  std::string data;
  {
    std::ifstream in(log, std::ios::binary);
    data.assign(std::istreambuf_iterator<char>(in), {});
  }
  for (size_t i = data.size() / 2; i < data.size() / 2 + 16; ++i) data[i] = static_cast<char>(~data[i]);
  {
    std::ofstream out(log, std::ios::binary | std::ios::trunc);
    out << data;
  }
  auto refused = RocksDbJournal::Open(dir_.string());
  EXPECT_THAT(refused.status(), StatusIs(absl::StatusCode::kDataLoss, ::testing::HasSubstr("is damaged")));
}

// A damaged ACKNOWLEDGED (musterd's own record) does not stop a sound store.
TEST_F(RocksDbJournalTest, DamagedAcknowledgedRecordIsIgnored) {
  CommitMany(dir_.string(), 10);
  {
    std::ofstream out(dir_ / "ACKNOWLEDGED", std::ios::trunc);
    out << "garbage";
  }
  auto journal = RocksDbJournal::Open(dir_.string());
  ASSERT_THAT(journal.status(), IsOk());
  EXPECT_EQ((*journal)->Load()->revision, 10u);
}

// Below the free-space minimum a commit is refused as Unavailable with a
// message about the full disk, and nothing of it is written.
TEST_F(RocksDbJournalTest, CommitRefusedBelowMinimumFreeSpace) {
  RocksDbJournalOptions options;
  options.min_free_bytes = int64_t{1} << 60;
  {
    auto journal = RocksDbJournal::Open(dir_.string(), options);
    ASSERT_THAT(journal.status(), IsOk());
    EXPECT_THAT((*journal)->Commit({{{"default", "orders", "a"}, Make("a", 1)}}, 1),
                StatusIs(absl::StatusCode::kUnavailable, ::testing::HasSubstr("is full")));
  }
  auto journal = RocksDbJournal::Open(dir_.string());
  ASSERT_THAT(journal.status(), IsOk());
  auto snapshot = (*journal)->Load();
  ASSERT_THAT(snapshot.status(), IsOk());
  EXPECT_EQ(snapshot->revision, 0u);
  EXPECT_TRUE(snapshot->instances.empty());
}

}  // namespace
}  // namespace muster
