#include "store/rocksdb_journal.h"

#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

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

// A store directory that cannot be created is a clear error, not a crash.
TEST_F(RocksDbJournalTest, UnopenableDirectoryIsAnError) {
  auto journal = RocksDbJournal::Open("/proc/muster-cannot-be-here");
  EXPECT_FALSE(journal.ok());
  EXPECT_THAT(journal.status().message(), ::testing::HasSubstr("cannot open the store"));
}

}  // namespace
}  // namespace muster
