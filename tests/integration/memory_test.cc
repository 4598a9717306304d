// musterd's memory stays bounded under large instances: the watch history is
// bounded in bytes (--history-bytes), reported by /healthz, and a watcher
// from a revision the bytes bound dropped gets 410 and resyncs.
#include <atomic>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "integration/musterd_fixture.h"

namespace muster::testing {
namespace {

using std::chrono::seconds;

constexpr size_t kMiB = size_t{1} << 20;

// The resident memory of a process, from /proc/PID/status (VmRSS, in kB).
size_t RssBytes(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  ADD_FAILURE() << "no VmRSS for " << pid;
  return 0;
}

// A register body with 32 KiB of metadata (64 values of 512 bytes, the most
// the default limits allow), different for each `version`.
std::string BigBody(int version) {
  boost::json::object metadata;
  for (int k = 0; k < 64; ++k) {
    std::string value(512, static_cast<char>('a' + k % 26));
    const std::string tag = std::to_string(version);
    value.replace(0, tag.size(), tag);
    metadata["key" + std::to_string(k)] = value;
  }
  // No lease: a slow run must not see expiries between the updates.
  return RegisterBody("10.0.0.1:80", {{"metadata", std::move(metadata)}, {"ttl_seconds", 0}});
}

class HistoryBytesTest : public MusterdTest {
 protected:
  std::vector<std::string> MusterdArgs() const override {
    return {"--history-bytes", "16MiB"};  // and the default --history of 65536 events
  }

  boost::json::object Health() {
    wire::HttpResponse r = Must(client().Get("/healthz"));
    EXPECT_EQ(r.status, 200) << r.body;
    return JsonOf(r).as_object();
  }
};

// 3,000 updates of instances with 32 KiB of metadata, read by a watcher (so
// that every event's text is made too), fit 16 MiB of history: the history
// holds a few hundred of them, /healthz says so, a watch from before it is
// 410, and musterd's resident memory grows by far less than the 3,000 events
// would hold (about 220 MiB with their texts, all within the count bound).
TEST_F(HistoryBytesTest, LargeUpdatesKeepHistoryAndMemoryBounded) {
  constexpr int kInstances = 10;
  constexpr int kUpdatesPerInstance = 300;
  for (int i = 0; i < kInstances; ++i) {
    wire::HttpResponse r = Register("big", "i-" + std::to_string(i), BigBody(0));
    ASSERT_EQ(r.status, 201) << r.body;
  }
  const uint64_t first = CurrentRevision();
  const size_t rss_before = RssBytes(musterd_.pid());

  // A watcher of everything, reading as fast as it can.
  auto stream = Watch(wire::WatchTarget("", {"big"}, first + 1));
  ASSERT_NE(stream, nullptr);
  const uint64_t last_expected = first + kInstances * kUpdatesPerInstance;
  std::atomic<uint64_t> watched{0};
  std::thread watcher([&] {
    while (true) {
      auto e = stream->Next(seconds(30));
      if (!e.ok() || e->event == "compacted") return;
      ++watched;
      if (std::stoull(e->id) >= last_expected) return;
    }
  });
  // One writer per instance, so that writes share the store's syncs.
  std::vector<std::thread> writers;
  std::atomic<int> failures{0};
  for (int i = 0; i < kInstances; ++i) {
    writers.emplace_back([&, i] {
      wire::HttpClient own(musterd_.address());
      for (int v = 1; v <= kUpdatesPerInstance; ++v) {
        auto r = own.Put(InstancePath("big", "i-" + std::to_string(i)), BigBody(v));
        if (!r.ok() || r->status != 200) ++failures;
      }
    });
  }
  for (std::thread& t : writers) t.join();
  watcher.join();
  ASSERT_EQ(failures.load(), 0);
  EXPECT_GT(watched.load(), 0u);
  const size_t rss_after = RssBytes(musterd_.pid());

  const boost::json::object health = Health();
  ASSERT_TRUE(health.contains("history")) << boost::json::serialize(health);
  const boost::json::object& history = health.at("history").as_object();
  const uint64_t events = U64(history.at("events"));
  const uint64_t bytes = U64(history.at("bytes"));
  const uint64_t oldest = U64(history.at("oldest_revision"));
  EXPECT_LE(bytes, 16 * kMiB);
  EXPECT_GE(bytes, 12 * kMiB);  // it is full, less at most one event
  // Each event counts at about 75 KiB (its instance and its text).
  EXPECT_GT(events, 150u);
  EXPECT_LT(events, 300u);
  EXPECT_EQ(oldest, last_expected - events + 1);

  // A watcher from before the retained history must list again...
  wire::HttpResponse gone =
      Must(client().Get(wire::WatchTarget("", {"big"}, oldest - 1), seconds(5)));
  EXPECT_EQ(gone.status, 410) << gone.body;
  EXPECT_EQ(ErrorCodeOf(gone), "gone") << gone.body;
  // ...and one from the oldest retained revision replays from there.
  auto kept = Watch(wire::WatchTarget("", {"big"}, oldest));
  ASSERT_NE(kept, nullptr);
  auto e = NextEvent(*kept, seconds(10));
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->revision, oldest);

  // The history holds at most 16 MiB and the store's memtable at most 64 MiB
  // more; without the byte bound the history alone grows by over 200 MiB.
  const size_t growth = rss_after > rss_before ? rss_after - rss_before : 0;
  std::cout << "musterd RSS: " << rss_before / kMiB << " MiB before, " << rss_after / kMiB
            << " MiB after " << kInstances * kUpdatesPerInstance << " updates (history "
            << events << " events, " << bytes / kMiB << " MiB)\n";
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // ASan keeps freed memory in quarantine (256 MiB by default) and pads every
  // block, TSan keeps shadow memory of every byte, so RSS says nothing of the
  // bound in those builds; the history's own byte count above is still checked.
  (void)growth;
#else
  EXPECT_LT(growth, 128 * kMiB) << "RSS grew from " << rss_before << " to " << rss_after;
#endif
}

// Watchers that stop reading: the history holds enough large events.
class StalledWatchersTest : public HistoryBytesTest {
 protected:
  std::vector<std::string> MusterdArgs() const override {
    return {"--history-bytes", "64MiB", "--write-timeout", "3s"};
  }
};

// Watchers that never read hold next to nothing of their own: a watch keeps
// one read of events (256 KiB of them at most, their texts shared with the
// history, not copied) while its socket is full, and is closed after
// --write-timeout. Before reads were bounded in bytes, each such watcher
// held 256 events' texts joined into a copy of its own (over 8 MiB here).
TEST_F(StalledWatchersTest, WatchersThatDoNotReadHoldLittleAndAreClosed) {
  const uint64_t first = CurrentRevision() + 1;
  for (int v = 0; v < 400; ++v) {
    wire::HttpResponse r = Register("big", "i-" + std::to_string(v % 10), BigBody(v));
    ASSERT_TRUE(r.status == 200 || r.status == 201) << r.body;
  }
  // One reader first, so that every event's text is made (and counted in the
  // history) before the stalled ones come.
  auto reader = Watch(wire::WatchTarget("", {"big"}, first));
  ASSERT_NE(reader, nullptr);
  for (int i = 0; i < 400; ++i) ASSERT_TRUE(NextEvent(*reader, seconds(10)).has_value());
  const size_t rss_before = RssBytes(musterd_.pid());

  constexpr int kStalled = 40;
  std::vector<std::unique_ptr<wire::SseStream>> stalled;
  for (int i = 0; i < kStalled; ++i) {
    stalled.push_back(Watch(wire::WatchTarget("", {"big"}, first)));
    ASSERT_NE(stalled.back(), nullptr);
  }
  // Each has written what its socket takes and waits with the rest.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const size_t rss_stalled = RssBytes(musterd_.pid());
  EXPECT_EQ(U64(Health().at("watches").as_object().at("open")),
            static_cast<uint64_t>(kStalled + 1));
  const size_t growth = rss_stalled > rss_before ? rss_stalled - rss_before : 0;
  std::cout << "musterd RSS: " << rss_before / kMiB << " MiB before, " << rss_stalled / kMiB
            << " MiB with " << kStalled << " stalled watchers\n";
  EXPECT_LT(growth, 64 * kMiB) << "RSS grew from " << rss_before << " to " << rss_stalled;

  // --write-timeout ends them (a socket that takes nothing gets no event);
  // the reader, which is up to date, stays.
  uint64_t open = kStalled + 1;
  for (int i = 0; i < 100 && open > 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    open = U64(Health().at("watches").as_object().at("open"));
  }
  EXPECT_EQ(open, 1u);
}

// The byte size flag takes units and refuses nonsense at startup.
TEST(HistoryBytesFlagTest, BadSizeIsAUsageError) {
  MusterdProcess musterd(MUSTERD_PATH);
  absl::Status started = musterd.Start({"--history-bytes", "16 potatoes"});
  ASSERT_FALSE(started.ok());
  EXPECT_NE(std::string(started.message()).find("history_bytes"), std::string::npos) << started;
}

}  // namespace
}  // namespace muster::testing
