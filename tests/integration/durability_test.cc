// Durability of the embedded store: every acknowledged change survives kill -9,
// revisions never go backwards across a restart, leases get a fresh TTL after
// it, and SIGTERM shuts down cleanly with exit status 0.
#include <algorithm>
#include <atomic>
#include <chrono>
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
#include "support/blocking_query.h"

namespace muster::testing {
namespace {

namespace json = boost::json;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using std::chrono::milliseconds;
using std::chrono::seconds;

using Key = std::pair<std::string, std::string>;  // service, id

class DurabilityTest : public MusterdTest {
 protected:
  // Kills musterd with SIGKILL, starts it on the same data directory and
  // points the client at the new port.
  void CrashAndRestart(const std::vector<std::string>& args = {}) {
    musterd_.Kill9();
    absl::Status restarted = musterd_.Restart(args);
    ASSERT_TRUE(restarted.ok()) << restarted;
    Reconnect();
  }

  // Every instance of `services`, keyed by (service, id).
  std::map<Key, Instance> Snapshot(const std::vector<std::string>& services) {
    std::map<Key, Instance> out;
    for (const std::string& service : services) {
      for (Instance& in : List(service).instances) out[{in.service, in.id}] = std::move(in);
    }
    return out;
  }
};

// 200 acknowledged registrations (with and without leases) and 40 acknowledged
// deregistrations all survive kill -9 exactly, revisions included.
TEST_F(DurabilityTest, KillNineKeepsEveryAcknowledgedChange) {
  constexpr int kInstances = 200;
  constexpr int kThreads = 4;
  const std::vector<std::string> services = {"orders", "billing"};

  std::mutex mu;
  std::map<Key, Instance> acked;  // the acknowledged state
  uint64_t max_revision = 0;
  auto worker = [&](int t) {
    wire::HttpClient http(musterd_.address());
    for (int i = t; i < kInstances; i += kThreads) {
      const std::string service = services[i % 2];
      const std::string id = "inst-" + std::to_string(i);
      json::object extra = {{"version", "v" + std::to_string(i % 3)},
                            {"weight", i + 1},
                            {"ttl_seconds", i % 4 < 2 ? 0 : 30},
                            {"metadata", {{"n", std::to_string(i)}}}};
      auto r = http.Put(InstancePath(service, id),
                        RegisterBody("10.0.0.1:" + std::to_string(1000 + i), extra));
      if (!r.ok() || r->status != 201) {
        ADD_FAILURE() << "register " << id << ": "
                      << (r.ok() ? std::to_string(r->status) + " " + r->body
                                 : r.status().ToString());
        continue;
      }
      auto in = InstanceFromJson(json::parse(r->body));
      if (!in.ok()) {
        ADD_FAILURE() << "register " << id << " answered " << r->body;
        continue;
      }
      std::lock_guard lock(mu);
      max_revision = std::max(max_revision, in->modify_revision);
      acked[{service, id}] = *std::move(in);
    }
    for (int i = t; i < kInstances; i += kThreads) {
      if (i % 5 != 0) continue;
      const std::string service = services[i % 2];
      const std::string id = "inst-" + std::to_string(i);
      auto r = http.Delete(InstancePath(service, id));
      if (!r.ok() || r->status != 200) {
        ADD_FAILURE() << "deregister " << id << ": "
                      << (r.ok() ? std::to_string(r->status) + " " + r->body
                                 : r.status().ToString());
        continue;
      }
      json::value v = json::parse(r->body);
      std::lock_guard lock(mu);
      max_revision = std::max(max_revision, U64(v.at("revision")));
      acked.erase({service, id});
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(worker, t);
  for (auto& th : threads) th.join();
  ASSERT_FALSE(HasFailure());
  ASSERT_EQ(acked.size(), static_cast<size_t>(kInstances - kInstances / 5));

  CrashAndRestart();
  if (HasFatalFailure()) return;

  std::map<Key, Instance> after = Snapshot(services);
  ASSERT_EQ(after.size(), acked.size());
  for (const auto& [key, want] : acked) {
    SCOPED_TRACE(key.first + "/" + key.second);
    auto it = after.find(key);
    ASSERT_NE(it, after.end()) << "acknowledged instance lost";
    EXPECT_TRUE(it->second.SameSpec(want)) << SerializeInstance(it->second) << " vs "
                                           << SerializeInstance(want);
    EXPECT_EQ(it->second.create_revision, want.create_revision);
    EXPECT_EQ(it->second.modify_revision, want.modify_revision);
  }
  for (int i = 0; i < kInstances; i += 5) {
    EXPECT_EQ(after.count({services[i % 2], "inst-" + std::to_string(i)}), 0u)
        << "deregistered inst-" << i << " came back";
  }

  // Revisions never go backwards: the registry resumes at or after the last one.
  EXPECT_GE(CurrentRevision(), max_revision);
  EXPECT_GE(List("orders").revision, max_revision);
  wire::HttpResponse fresh = Register("orders", "after-crash", RegisterBody("10.0.0.9:80"));
  ASSERT_EQ(fresh.status, 201) << fresh.body;
  EXPECT_GT(U64(JsonOf(fresh).at("create_revision")), max_revision);

  // The history does not survive a restart: resuming from before it is 410.
  auto stream = wire::SseStream::Open(musterd_.address(),
                                        wire::WatchTarget("", {}, max_revision));
  ASSERT_FALSE(stream.ok());
  EXPECT_EQ(stream.status().code(), absl::StatusCode::kOutOfRange) << stream.status();
}

// Writers hammering musterd when it is killed: every change it acknowledged is
// there after the restart; the one in flight may or may not be.
TEST_F(DurabilityTest, KillNineDuringWritesKeepsAcknowledgedChanges) {
  constexpr int kThreads = 4;
  std::mutex mu;
  std::map<Key, uint64_t> acked;  // -> modify_revision
  std::map<Key, bool> in_flight;  // the request each writer had open when it failed
  std::atomic<int> total{0};
  std::atomic<bool> stop{false};
  auto writer = [&](int t) {
    wire::HttpClient http(musterd_.address());
    for (int i = 0; !stop.load(); ++i) {
      const Key key{"orders", "w" + std::to_string(t) + "-" + std::to_string(i)};
      auto r = http.Put(InstancePath(key.first, key.second),
                        RegisterBody("10.0.0.1:80", {{"ttl_seconds", 0}}), seconds(5));
      if (!r.ok()) {  // the crash
        std::lock_guard lock(mu);
        in_flight[key] = true;
        return;
      }
      if (r->status != 201) {
        ADD_FAILURE() << "register " << key.second << ": " << r->status << " " << r->body;
        return;
      }
      json::value v = json::parse(r->body);
      std::lock_guard lock(mu);
      acked[key] = U64(v.at("modify_revision"));
      ++total;
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(writer, t);
  // Kill once a good number of writes has been acknowledged.
  const bool enough = WaitFor([&] { return total.load() >= 100; }, seconds(60), milliseconds(5));
  musterd_.Kill9();
  stop = true;
  for (auto& th : threads) th.join();
  ASSERT_TRUE(enough) << "only " << total.load() << " writes acknowledged in 60 s";

  absl::Status restarted = musterd_.Restart();
  ASSERT_TRUE(restarted.ok()) << restarted;
  Reconnect();
  ListResult list = List("orders");
  std::map<Key, uint64_t> found;
  for (const Instance& in : list.instances) found[{in.service, in.id}] = in.modify_revision;
  for (const auto& [key, revision] : acked) {
    auto it = found.find(key);
    ASSERT_NE(it, found.end()) << "acknowledged " << key.second << " lost";
    EXPECT_EQ(it->second, revision) << key.second;
  }
  for (const auto& [key, revision] : found) {
    EXPECT_TRUE(acked.count(key) || in_flight.count(key))
        << key.second << " was never sent, yet is registered";
  }
}

// SIGTERM stops musterd with exit status 0, and what it acknowledged is kept.
TEST_F(DurabilityTest, SigtermExitsZeroAndKeepsData) {
  wire::HttpResponse reg = Register("orders", "a", RegisterBody("10.0.0.1:80", {{"weight", 4}}));
  ASSERT_EQ(reg.status, 201) << reg.body;
  const uint64_t revision = U64(JsonOf(reg).at("modify_revision"));

  EXPECT_EQ(musterd_.Terminate(), 0);

  absl::Status restarted = musterd_.Restart();
  ASSERT_TRUE(restarted.ok()) << restarted;
  Reconnect();
  ListResult list = List("orders");
  ASSERT_THAT(list.ids(), ElementsAre("a"));
  EXPECT_EQ(list.instances[0].weight, 4u);
  EXPECT_EQ(list.instances[0].modify_revision, revision);
}

// SIGTERM with an open watch stream and an open blocking query still exits 0 promptly.
TEST_F(DurabilityTest, SigtermWithOpenWatchersExitsZero) {
  auto stream = Watch(wire::WatchPath());
  ASSERT_NE(stream, nullptr);
  // Any answer is fine here (or none); only that the server does not wait for it.
  BlockingQuery blocked(musterd_.address(), ListPath("orders", "index=1&wait=5m"), seconds(30));
  ASSERT_TRUE(WaitForBlockingQueries(musterd_.address(), 1));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(musterd_.Terminate(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(15));
}

// After a restart every lease starts afresh: a ttl instance is still there,
// and expires later if nobody renews it.
TEST_F(DurabilityTest, LeasesGetFreshTtlAfterRestart) {
  ASSERT_EQ(Register("orders", "leased", RegisterBody("10.0.0.1:80", {{"ttl_seconds", 2}})).status,
            201);
  ASSERT_EQ(Register("orders", "forever", RegisterBody("10.0.0.2:80", {{"ttl_seconds", 0}})).status,
            201);
  CrashAndRestart();
  if (HasFatalFailure()) return;
  EXPECT_THAT(List("orders").ids(), ElementsAre("forever", "leased"));
  EXPECT_TRUE(WaitFor([&] { return List("orders").ids() == std::vector<std::string>{"forever"}; },
                      seconds(6), milliseconds(50)))
      << "the leased instance never expired after the restart";
}

// A deregistered instance does not come back after a crash, even when its
// id was registered and deregistered several times.
TEST_F(DurabilityTest, RepeatedRegisterDeregisterSurvivesCrash) {
  for (int round = 0; round < 5; ++round) {
    ASSERT_EQ(Register("orders", "flappy", RegisterBody("10.0.0.1:80", {{"weight", round + 1}}))
                  .status,
              201);
    ASSERT_EQ(Deregister("orders", "flappy").status, 200);
  }
  ASSERT_EQ(Register("orders", "stable", RegisterBody("10.0.0.2:80")).status, 201);
  const uint64_t before = CurrentRevision();
  CrashAndRestart();
  if (HasFatalFailure()) return;
  EXPECT_THAT(List("orders").ids(), ElementsAre("stable"));
  EXPECT_GE(CurrentRevision(), before);
  EXPECT_EQ(Heartbeat("orders", "flappy").status, 404);
}

}  // namespace
}  // namespace muster::testing
