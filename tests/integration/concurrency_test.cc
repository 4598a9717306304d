// Many clients at once: 8 threads, each with its own connection and its own
// ids, register, heartbeat and deregister at random. Every answer must agree
// with what that thread knows, and at the end the registry must hold exactly
// the acknowledged state, with one revision per acknowledged change.
#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "integration/musterd_fixture.h"

namespace muster::testing {
namespace {

namespace json = boost::json;

constexpr int kThreads = 8;
constexpr int kOpsPerThread = 60;
constexpr int kIdsPerThread = 5;

// What one thread believes about one of its ids.
struct Acked {
  uint32_t weight = 0;
  std::string version;
  uint64_t modify_revision = 0;
};

class ConcurrencyTest : public MusterdTest {};

// Concurrent register/heartbeat/deregister on distinct ids end in exactly the
// acknowledged state.
TEST_F(ConcurrencyTest, ConcurrentClientsEndInAcknowledgedState) {
  const uint64_t start_revision = CurrentRevision();

  std::mutex mu;
  std::map<std::string, Acked> final_state;  // merged after each thread ends
  std::vector<uint64_t> change_revisions;    // one per acknowledged change

  auto worker = [&](int t) {
    wire::HttpClient http(musterd_.address());
    std::mt19937 rng(1234 + t);
    std::map<std::string, Acked> state;
    std::vector<uint64_t> revisions;
    for (int op = 0; op < kOpsPerThread; ++op) {
      const std::string id = "t" + std::to_string(t) + "-" + std::to_string(rng() % kIdsPerThread);
      const bool present = state.count(id) > 0;
      const unsigned kind = rng() % 3;
      if (kind == 0) {
        // Each register changes the weight, so each is a change with a revision.
        Acked next{static_cast<uint32_t>(op + 1), "v" + std::to_string(rng() % 3), 0};
        auto r = http.Put(InstancePath("load", id),
                          RegisterBody("10.0.0." + std::to_string(t + 1) + ":8080",
                                       {{"weight", next.weight},
                                        {"version", next.version},
                                        {"ttl_seconds", 120}}));
        if (!r.ok()) {
          ADD_FAILURE() << "register " << id << ": " << r.status();
          return;
        }
        if (r->status != (present ? 200 : 201)) {
          ADD_FAILURE() << "register " << id << " (present=" << present << ") answered "
                        << r->status << " " << r->body;
          return;
        }
        next.modify_revision = U64(json::parse(r->body).at("modify_revision"));
        revisions.push_back(next.modify_revision);
        state[id] = next;
      } else if (kind == 1) {
        auto r = http.Put(HeartbeatPath("load", id), "");
        if (!r.ok()) {
          ADD_FAILURE() << "heartbeat " << id << ": " << r.status();
          return;
        }
        if (r->status != (present ? 200 : 404)) {
          ADD_FAILURE() << "heartbeat " << id << " (present=" << present << ") answered "
                        << r->status << " " << r->body;
          return;
        }
      } else {
        auto r = http.Delete(InstancePath("load", id));
        if (!r.ok()) {
          ADD_FAILURE() << "deregister " << id << ": " << r.status();
          return;
        }
        if (r->status != (present ? 200 : 404)) {
          ADD_FAILURE() << "deregister " << id << " (present=" << present << ") answered "
                        << r->status << " " << r->body;
          return;
        }
        if (present) {
          revisions.push_back(U64(json::parse(r->body).at("revision")));
          state.erase(id);
        }
      }
    }
    std::lock_guard lock(mu);
    final_state.insert(state.begin(), state.end());
    change_revisions.insert(change_revisions.end(), revisions.begin(), revisions.end());
  };

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(worker, t);
  for (auto& th : threads) th.join();
  ASSERT_FALSE(HasFailure());

  ListResult list = List("load");
  std::vector<std::string> want_ids;
  for (const auto& [id, acked] : final_state) want_ids.push_back(id);
  EXPECT_EQ(list.ids(), want_ids);
  for (const Instance& in : list.instances) {
    auto it = final_state.find(in.id);
    if (it == final_state.end()) continue;
    SCOPED_TRACE(in.id);
    EXPECT_EQ(in.weight, it->second.weight);
    EXPECT_EQ(in.version, it->second.version);
    EXPECT_EQ(in.modify_revision, it->second.modify_revision);
  }

  // Every acknowledged change got a revision of its own, and nothing else
  // moved the counter.
  std::sort(change_revisions.begin(), change_revisions.end());
  EXPECT_EQ(std::adjacent_find(change_revisions.begin(), change_revisions.end()),
            change_revisions.end())
      << "two changes share a revision";
  ASSERT_FALSE(change_revisions.empty());
  EXPECT_GT(change_revisions.front(), start_revision);
  EXPECT_EQ(list.revision, start_revision + change_revisions.size());
  EXPECT_EQ(change_revisions.back(), list.revision);
}

// Many clients reading while others write never see a half-applied change:
// each list is sorted, and its revision never goes backwards for one reader.
TEST_F(ConcurrencyTest, ReadersSeeMonotonicRevisionsDuringWrites) {
  std::atomic<bool> done{false};
  auto reader = [&] {
    wire::HttpClient http(musterd_.address());
    uint64_t last = 0;
    while (!done.load()) {
      auto r = http.Get(ListPath("load"));
      if (!r.ok()) {
        ADD_FAILURE() << "list: " << r.status();
        return;
      }
      ListResult list = ParseList(*r);
      if (list.revision < last) {
        ADD_FAILURE() << "revision went back from " << last << " to " << list.revision;
        return;
      }
      last = list.revision;
      std::vector<std::string> ids = list.ids();
      if (!std::is_sorted(ids.begin(), ids.end())) {
        ADD_FAILURE() << "list not sorted at revision " << list.revision;
        return;
      }
    }
  };
  auto writer = [&](int t) {
    wire::HttpClient http(musterd_.address());
    for (int i = 0; i < 40; ++i) {
      const std::string id = "w" + std::to_string(t) + "-" + std::to_string(i % 4);
      auto r = i % 3 == 2 ? http.Delete(InstancePath("load", id))
                          : http.Put(InstancePath("load", id),
                                     RegisterBody("10.0.0.1:80", {{"weight", i + 1}}));
      if (!r.ok()) {
        ADD_FAILURE() << "write " << id << ": " << r.status();
        return;
      }
    }
  };
  std::vector<std::thread> readers, writers;
  for (int i = 0; i < 3; ++i) readers.emplace_back(reader);
  for (int t = 0; t < 3; ++t) writers.emplace_back(writer, t);
  for (auto& th : writers) th.join();
  done = true;
  for (auto& th : readers) th.join();
}

}  // namespace
}  // namespace muster::testing
