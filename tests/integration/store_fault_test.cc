// Faults of the embedded store, with a real musterd on real files: kill -9
// under concurrent writes, a full disk (a small tmpfs), and a damaged, a
// truncated and a torn write-ahead log (docs/operations.md).
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/json_codec.h"
#include "integration/musterd_fixture.h"
#include "support/run_command.h"

namespace muster::testing {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using ::testing::HasSubstr;
using std::chrono::milliseconds;
using std::chrono::seconds;

bool IsRunning(pid_t pid) { return pid > 0 && kill(pid, 0) == 0; }

// The write-ahead log holding the most data (RocksDB's live *.log).
fs::path LiveLog(const std::string& dir) {
  fs::path best;
  uintmax_t best_size = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".log") continue;
    if (best.empty() || entry.file_size() > best_size) {
      best = entry.path();
      best_size = entry.file_size();
    }
  }
  return best;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteFile(const fs::path& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

// ---------------------------------------------------------------------------
// kill -9 and a damaged log, on the ordinary disk.

class StoreFaultTest : public MusterdTest {
 protected:
  // Registers `count` instances orders/inst-N with 8 writers; returns them
  // as acknowledged (id -> modify_revision) and the highest revision seen.
  std::map<std::string, uint64_t> RegisterMany(int count, uint64_t* max_revision) {
    constexpr int kWriters = 8;
    std::mutex mu;
    std::map<std::string, uint64_t> acked;
    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back([&, w] {
        wire::HttpClient http(musterd_.address());
        for (int i = w; i < count; i += kWriters) {
          const std::string id = "inst-" + std::to_string(i);
          auto r = http.Put(InstancePath("orders", id),
                            RegisterBody("10.0.0.1:" + std::to_string(1000 + i),
                                         {{"ttl_seconds", 0}, {"metadata", {{"n", std::to_string(i)}}}}));
          if (!r.ok() || r->status != 201) {
            ADD_FAILURE() << "register " << id << ": "
                          << (r.ok() ? std::to_string(r->status) + " " + r->body : r.status().ToString());
            continue;
          }
          const uint64_t revision = U64(json::parse(r->body).at("modify_revision"));
          std::lock_guard lock(mu);
          acked[id] = revision;
          *max_revision = std::max(*max_revision, revision);
        }
      });
    }
    for (auto& t : writers) t.join();
    return acked;
  }

  // Every listed instance of orders was acknowledged, with its revision.
  void ExpectOnlyAcknowledged(const ListResult& list, const std::map<std::string, uint64_t>& acked) {
    for (const Instance& in : list.instances) {
      auto it = acked.find(in.id);
      if (it == acked.end()) {
        ADD_FAILURE() << in.id << " was never acknowledged, yet is listed";
        continue;
      }
      EXPECT_EQ(in.modify_revision, it->second) << in.id;
    }
  }

  // The damage of a log refuses the start with a message that says what is
  // damaged and how to proceed; --recover=point-in-time starts with what
  // precedes the damage, and the revision continues after the last one
  // acknowledged. `damage` changes the live log after the crash.
  void DamagedLogRefusesStart(const std::function<void(const fs::path&)>& damage,
                              const std::string& expected_reason) {
    uint64_t max_revision = 0;
    const std::map<std::string, uint64_t> acked = RegisterMany(1000, &max_revision);
    ASSERT_EQ(acked.size(), 1000u);
    musterd_.Kill9();

    const fs::path log = LiveLog(musterd_.data_dir());
    ASSERT_FALSE(log.empty()) << "no write-ahead log in " << musterd_.data_dir();
    ASSERT_GT(fs::file_size(log), 100'000u) << log << " does not hold the 1,000 registrations";
    damage(log);

    absl::Status refused = musterd_.Restart();
    ASSERT_FALSE(refused.ok()) << "musterd started on a damaged log";
    EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable) << refused;  // exited before listening
    const std::string message(refused.message());
    EXPECT_THAT(message, HasSubstr(expected_reason));
    EXPECT_THAT(message, HasSubstr("revision " + std::to_string(max_revision) + " was acknowledged"));
    EXPECT_THAT(message, HasSubstr("--recover=point-in-time"));
    EXPECT_THAT(message, HasSubstr("does not start"));
    // Refusing again is the same: nothing was accepted.
    EXPECT_FALSE(musterd_.Restart().ok());

    absl::Status recovered = musterd_.Restart({"--recover=point-in-time"});
    ASSERT_TRUE(recovered.ok()) << recovered;
    Reconnect();
    EXPECT_THAT(musterd_.Logs(), HasSubstr("--recover=point-in-time: the store"));
    ListResult list = List("orders");
    EXPECT_LT(list.instances.size(), acked.size()) << "the damage lost nothing?";
    ExpectOnlyAcknowledged(list, acked);
    // Revisions never go back: clients saw max_revision; and a watcher that
    // saw it is told to list again (410) rather than resuming on a store
    // that lost changes it was told of.
    EXPECT_GT(CurrentRevision(), max_revision);
    auto resumed = wire::SseStream::Open(musterd_.address(),
                                           wire::WatchTarget("", {}, max_revision + 1));
    ASSERT_FALSE(resumed.ok());
    EXPECT_EQ(resumed.status().code(), absl::StatusCode::kOutOfRange) << resumed.status();
    wire::HttpResponse fresh = Register("orders", "after-recovery", RegisterBody("10.0.0.9:80"));
    ASSERT_EQ(fresh.status, 201) << fresh.body;
    EXPECT_GT(U64(JsonOf(fresh).at("modify_revision")), max_revision + 1);

    // The loss is accepted once: the next start (without the flag) is clean.
    const size_t survivors = list.instances.size();
    musterd_.Kill9();
    absl::Status again = musterd_.Restart();
    ASSERT_TRUE(again.ok()) << again;
    Reconnect();
    EXPECT_EQ(List("orders").instances.size(), survivors + 1);
  }
};

// Sixteen bytes flipped in the middle of the live log after 1,000
// acknowledged registrations: musterd refuses to start instead of serving
// half of them silently.
TEST_F(StoreFaultTest, DamagedLogRefusesToStart) {
  DamagedLogRefusesStart(
      [](const fs::path& log) {
        std::string data = ReadFile(log);
        for (size_t i = data.size() / 2; i < data.size() / 2 + 16; ++i) data[i] = static_cast<char>(~data[i]);
        WriteFile(log, data);
      },
      "is damaged");
}

// The live log truncated to half: a truncated log looks like a crash's torn
// tail to RocksDB, but acknowledged changes are missing, and musterd knows.
TEST_F(StoreFaultTest, TruncatedLogRefusesToStart) {
  DamagedLogRefusesStart(
      [](const fs::path& log) { fs::resize_file(log, fs::file_size(log) / 2); },
      "acknowledged changes are missing");
}

// A torn last record (a write kill -9 cut short before it was acknowledged)
// is normal: musterd starts with every acknowledged change.
TEST_F(StoreFaultTest, TornLastRecordStarts) {
  uint64_t max_revision = 0;
  const std::map<std::string, uint64_t> acked = RegisterMany(200, &max_revision);
  ASSERT_EQ(acked.size(), 200u);
  musterd_.Kill9();
  ASSERT_TRUE(musterd_.Restart().ok());  // the log is flushed at open; a new one starts
  Reconnect();
  // The state before the next write: what musterd had acknowledged then.
  const fs::path acknowledged = fs::path(musterd_.data_dir()) / "ACKNOWLEDGED";
  const std::string before = ReadFile(acknowledged);
  ASSERT_EQ(before.size(), 42u);
  wire::HttpResponse last = Register("orders", "in-flight", RegisterBody("10.0.0.9:80", {{"ttl_seconds", 0}}));
  ASSERT_EQ(last.status, 201) << last.body;
  musterd_.Kill9();
  // Make that write the one a crash tore: its record cut in half, and not
  // acknowledged (the crash came before ACKNOWLEDGED was written).
  const fs::path log = LiveLog(musterd_.data_dir());
  ASSERT_FALSE(log.empty());
  const uintmax_t size = fs::file_size(log);
  ASSERT_GT(size, 20u);
  ASSERT_LT(size, 4096u) << log << " holds more than the last write";
  fs::resize_file(log, size / 2);
  WriteFile(acknowledged, before);

  absl::Status restarted = musterd_.Restart();
  ASSERT_TRUE(restarted.ok()) << restarted;
  Reconnect();
  ListResult list = List("orders");
  EXPECT_EQ(list.instances.size(), acked.size());
  ExpectOnlyAcknowledged(list, acked);
  EXPECT_GE(CurrentRevision(), max_revision);
}

// kill -9 while writers register and deregister, several times over: after
// each restart every acknowledged change is there (the one in flight may or
// may not be), and the revision never goes back.
TEST_F(StoreFaultTest, KillNineUnderRegisterDeregisterLoad) {
  constexpr int kTrials = 5;
  constexpr int kWriters = 4;
  constexpr int kKeys = 12;  // per writer
  struct KeyState {
    bool present = false;
    uint64_t modify_revision = 0;
    bool in_flight = false;  // a request was open at the crash
  };
  // Each writer owns its keys: w<writer>-<k>.
  std::vector<std::map<std::string, KeyState>> model(kWriters);
  uint64_t floor = 0;  // revisions seen so far; the registry never goes below
  for (int trial = 0; trial < kTrials; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    std::atomic<int> acks{0};
    std::atomic<bool> stop{false};
    std::vector<uint64_t> max_revision(kWriters, 0);
    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back([&, w] {
        wire::HttpClient http(musterd_.address());
        for (int i = 0; !stop.load(); ++i) {
          const std::string id = "w" + std::to_string(w) + "-" + std::to_string(i % kKeys);
          KeyState& key = model[w][id];
          absl::StatusOr<wire::HttpResponse> r;
          if (key.present) {
            r = http.Delete(InstancePath("orders", id), seconds(5));
          } else {
            r = http.Put(InstancePath("orders", id),
                         RegisterBody("10.0.0.1:80", {{"ttl_seconds", 0}, {"weight", trial * 1000 + i % 1000 + 1}}),
                         seconds(5));
          }
          if (!r.ok()) {  // the crash
            key.in_flight = true;
            return;
          }
          if (r->status != (key.present ? 200 : 201)) {
            ADD_FAILURE() << (key.present ? "deregister " : "register ") << id << ": " << r->status
                          << " " << r->body;
            return;
          }
          json::value v = json::parse(r->body);
          const uint64_t revision = U64(key.present ? v.at("revision") : v.at("modify_revision"));
          max_revision[w] = std::max(max_revision[w], revision);
          key.present = !key.present;
          key.modify_revision = revision;
          ++acks;
        }
      });
    }
    const bool enough = WaitFor([&] { return acks.load() >= 150; }, seconds(30), milliseconds(2));
    musterd_.Kill9();
    stop = true;
    for (auto& t : writers) t.join();
    ASSERT_TRUE(enough) << "only " << acks.load() << " writes acknowledged";
    ASSERT_FALSE(HasFailure());
    for (uint64_t r : max_revision) floor = std::max(floor, r);

    absl::Status restarted = musterd_.Restart();
    ASSERT_TRUE(restarted.ok()) << restarted;
    Reconnect();
    const uint64_t revision = CurrentRevision();
    EXPECT_GE(revision, floor) << "the revision went back";
    floor = std::max(floor, revision);
    ListResult list = List("orders");
    std::map<std::string, uint64_t> found;
    for (const Instance& in : list.instances) found[in.id] = in.modify_revision;
    for (int w = 0; w < kWriters; ++w) {
      for (auto& [id, key] : model[w]) {
        auto it = found.find(id);
        const bool present = it != found.end();
        if (key.in_flight) {
          // Either outcome; a register that landed has a newer revision.
          if (present && !key.present) {
            EXPECT_GT(it->second, key.modify_revision) << id;
          }
          if (present && key.present) {
            EXPECT_GE(it->second, key.modify_revision) << id;
          }
          key.present = present;
          key.modify_revision = present ? it->second : key.modify_revision;
          key.in_flight = false;
          continue;
        }
        EXPECT_EQ(present, key.present) << id << (key.present ? " acknowledged, lost" : " deregistered, back");
        if (present && key.present) {
          EXPECT_EQ(it->second, key.modify_revision) << id;
        }
      }
    }
    for (const auto& [id, unused] : found) {
      const int w = id[1] - '0';
      EXPECT_TRUE(w >= 0 && w < kWriters && model[w].count(id)) << id << " was never written";
    }
    if (HasFailure()) return;
  }
}

// ---------------------------------------------------------------------------
// A full disk: the data directory on a 2 MiB tmpfs.

class DiskFullTest : public ::testing::Test {
 protected:
  DiskFullTest() : musterd_(MUSTERD_PATH) {}

  void SetUp() override {
    auto dir = MakeTempDir("musterd-tmpfs");
    ASSERT_TRUE(dir.ok()) << dir.status();
    mount_point_ = *dir;
    if (mount("tmpfs", mount_point_.c_str(), "tmpfs", 0, "size=2m") != 0) {
      const int err = errno;
      rmdir(mount_point_.c_str());
      mount_point_.clear();
      GTEST_SKIP() << "cannot mount a 2 MiB tmpfs (" << std::strerror(err)
                   << "): the disk-full tests need root (CAP_SYS_ADMIN)";
    }
    mounted_ = true;
    absl::Status used = musterd_.UseDataDir(mount_point_ + "/data");
    ASSERT_TRUE(used.ok()) << used;
  }

  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "---- musterd output ----\n" << musterd_.Logs() << "---- end of musterd output ----\n";
    }
    musterd_.Kill9();
    if (mounted_) umount2(mount_point_.c_str(), MNT_DETACH);
    if (!mount_point_.empty()) rmdir(mount_point_.c_str());
  }

  absl::Status Start(const std::vector<std::string>& args = {}) {
    absl::Status s = musterd_.Start(args);
    if (s.ok()) client_ = std::make_unique<wire::HttpClient>(musterd_.address());
    return s;
  }
  absl::Status CrashAndRestart(const std::vector<std::string>& args = {}) {
    musterd_.Kill9();
    return Start(args);
  }

  uint64_t FreeBytes() const {
    struct statvfs st;
    if (statvfs(mount_point_.c_str(), &st) != 0) return 0;
    return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  }

  // Fills the tmpfs with a file until about `leave` bytes remain free (0:
  // until the disk refuses to take more).
  void Fill(uint64_t leave) {
    const std::string path = mount_point_ + "/filler";
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    const std::string chunk(4096, 'f');
    while (FreeBytes() > leave) {
      if (write(fd, chunk.data(), chunk.size()) <= 0) break;
    }
    close(fd);
  }
  void Unfill() { unlink((mount_point_ + "/filler").c_str()); }

  wire::HttpResponse Put(const std::string& service, const std::string& id, const std::string& body) {
    return Must(client_->Put(InstancePath(service, id), body));
  }

  // A registration of about 31 KiB (60 metadata values of 500 bytes).
  static std::string BigBody() {
    json::object metadata;
    for (int i = 0; i < 60; ++i) metadata["k" + std::to_string(i)] = std::string(500, 'v');
    return RegisterBody("10.0.0.1:80", {{"ttl_seconds", 0}, {"metadata", metadata}});
  }

  static void ExpectDiskFull(const wire::HttpResponse& r) {
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_EQ(ErrorCodeOf(r), "unavailable") << r.body;
    EXPECT_THAT(ErrorMessageOf(r), HasSubstr("the disk under --data-dir"));
    EXPECT_THAT(ErrorMessageOf(r), HasSubstr("is full"));
    EXPECT_THAT(ErrorMessageOf(r), HasSubstr("resume by themselves"));
  }

  MusterdProcess musterd_;
  std::unique_ptr<wire::HttpClient> client_;
  std::string mount_point_;
  bool mounted_ = false;
};

// With the disk full, writes answer 503 while lists, services, watches and
// heartbeats go on (a lease outlives its TTL on heartbeats alone); once
// space is back writes resume by themselves, and nothing acknowledged is lost.
TEST_F(DiskFullTest, RefusesWritesServesReadsAndResumes) {
  ASSERT_TRUE(Start().ok());
  ASSERT_EQ(Put("orders", "a", RegisterBody("10.0.0.1:80", {{"ttl_seconds", 0}})).status, 201);
  ASSERT_EQ(Put("orders", "b", RegisterBody("10.0.0.2:80", {{"ttl_seconds", 0}})).status, 201);
  ASSERT_EQ(Put("orders", "keeper", RegisterBody("10.0.0.3:80", {{"ttl_seconds", 2}})).status, 201);
  auto stream = wire::SseStream::Open(musterd_.address(), wire::WatchTarget("", {"orders"}));
  ASSERT_TRUE(stream.ok()) << stream.status();

  Fill(0);
  ExpectDiskFull(Put("orders", "c", RegisterBody("10.0.0.4:80")));
  ExpectDiskFull(Must(client_->Delete(InstancePath("orders", "a"))));
  ASSERT_TRUE(IsRunning(musterd_.pid()));

  // Reads, and heartbeats beyond the TTL.
  const auto until = std::chrono::steady_clock::now() + milliseconds(3000);
  while (std::chrono::steady_clock::now() < until) {
    wire::HttpResponse hb = Must(client_->Put(HeartbeatPath("orders", "keeper"), ""));
    ASSERT_EQ(hb.status, 200) << hb.body;
    std::this_thread::sleep_for(milliseconds(400));
  }
  EXPECT_EQ(ParseList(Must(client_->Get(ListPath("orders")))).ids(),
            (std::vector<std::string>{"a", "b", "keeper"}));
  wire::HttpResponse services = Must(client_->Get(wire::ServicesPath()));
  EXPECT_EQ(services.status, 200) << services.body;
  wire::HttpResponse health = Must(client_->Get("/healthz"));
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(JsonOf(health).as_object().at("store_write_failing"), true) << health.body;
  ExpectDiskFull(Put("orders", "c", RegisterBody("10.0.0.4:80")));

  Unfill();
  wire::HttpResponse resumed;
  EXPECT_TRUE(WaitFor([&] {
    resumed = Put("orders", "c", RegisterBody("10.0.0.4:80", {{"ttl_seconds", 0}}));
    return resumed.status == 201;
  }, seconds(10), milliseconds(100))) << resumed.status << " " << resumed.body;
  health = Must(client_->Get("/healthz"));
  EXPECT_EQ(JsonOf(health).as_object().at("store_write_failing"), false) << health.body;
  // The watch opened before the disk filled hears the write after it.
  std::optional<WatchEvent> event = NextEvent(**stream, seconds(5));
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->id, "c");
  EXPECT_EQ(event->type, "registered");

  ASSERT_TRUE(CrashAndRestart().ok());
  EXPECT_EQ(ParseList(Must(client_->Get(ListPath("orders")))).ids(),
            (std::vector<std::string>{"a", "b", "c", "keeper"}));
}

// Without musterd's margin (--min-free-disk-kb 0) RocksDB itself runs into
// the full disk in the middle of writing its log. musterd must not abort
// (Debian's RocksDB asserts on a failed log writer), must answer 503, and
// resume once space is back, losing nothing acknowledged.
TEST_F(DiskFullTest, FullDiskUnderTheLogDoesNotAbort) {
  ASSERT_TRUE(Start({"--min-free-disk-kb", "0"}).ok());
  Fill(100 << 10);
  std::vector<std::string> acked;
  wire::HttpResponse refused;
  for (int i = 0; i < 20; ++i) {
    const std::string id = "big-" + std::to_string(i);
    wire::HttpResponse r = Put("big", id, BigBody());
    if (r.status == 201) {
      acked.push_back(id);
      continue;
    }
    refused = r;
    break;
  }
  ASSERT_NE(refused.status, 0) << "the disk never filled";
  ExpectDiskFull(refused);
  EXPECT_FALSE(acked.empty());
  ASSERT_TRUE(IsRunning(musterd_.pid())) << "musterd died on the full disk";
  EXPECT_THAT(musterd_.Logs(), HasSubstr("No space left on device"));
  ExpectDiskFull(Put("big", "more", BigBody()));
  EXPECT_EQ(ParseList(Must(client_->Get(ListPath("big")))).ids().size(), acked.size());

  Unfill();
  wire::HttpResponse resumed;
  EXPECT_TRUE(WaitFor([&] {
    resumed = Put("big", "after", BigBody());
    return resumed.status == 201;
  }, seconds(10), milliseconds(100))) << resumed.status << " " << resumed.body;
  acked.push_back("after");

  ASSERT_TRUE(CrashAndRestart().ok());
  std::vector<std::string> ids = ParseList(Must(client_->Get(ListPath("big")))).ids();
  std::sort(acked.begin(), acked.end());
  EXPECT_EQ(ids, acked);
}

// A start on a full disk serves what the store holds and refuses writes
// until space is back.
TEST_F(DiskFullTest, StartsOnAFullDisk) {
  ASSERT_TRUE(Start().ok());
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(Put("orders", "i" + std::to_string(i), BigBody()).status, 201);
  }
  musterd_.Kill9();
  Fill(0);
  absl::Status started = Start();
  ASSERT_TRUE(started.ok()) << started;
  EXPECT_EQ(ParseList(Must(client_->Get(ListPath("orders")))).ids(),
            (std::vector<std::string>{"i0", "i1", "i2", "i3", "i4"}));
  ExpectDiskFull(Put("orders", "i5", BigBody()));

  Unfill();
  wire::HttpResponse resumed;
  EXPECT_TRUE(WaitFor([&] {
    resumed = Put("orders", "i5", BigBody());
    return resumed.status == 201;
  }, seconds(10), milliseconds(100))) << resumed.status << " " << resumed.body;
  ASSERT_TRUE(CrashAndRestart().ok());
  EXPECT_EQ(ParseList(Must(client_->Get(ListPath("orders")))).ids().size(), 6u);
}

}  // namespace
}  // namespace muster::testing
