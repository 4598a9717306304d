// muster::etcd::Election on a real etcd: one leader among several candidates,
// handover when the leader resigns, dies or is cut off, a key or lease taken
// away behind the leader's back, and an etcd leader that dies under it.
//
// Every test records each node's on_change calls with their times and, from
// a sampler thread, how many nodes report leading() at once: neither may ever
// show two leaders.
#include "etcd/election.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/base/thread_annotations.h"
#include "core/mutex.h"
#include "etcd/client.h"
#include "rpc.pb.h"
#include "support/etcd_cluster.h"
#include "support/status_matchers.h"

namespace muster::etcd {
namespace {

using muster::testing::EtcdCluster;
using muster::testing::EtcdClusterOptions;
using muster::testing::StatusIs;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

constexpr char kKey[] = "/muster/test/leader";

long long Ms(Clock::duration d) {
  return std::chrono::duration_cast<milliseconds>(d).count();
}

std::string Name(int node) { return "node-" + std::to_string(node); }

// One on_change call.
struct Change {
  int node = 0;
  bool leading = false;
  Clock::time_point at;
};

// Every node's on_change calls, in the order they happened.
class Recorder {
 public:
  std::function<void(bool)> For(int node) {
    return [this, node](bool leading) {
      MutexLock lock(mu_);
      changes_.push_back(Change{node, leading, Clock::now()});
      changed_.NotifyAll();
    };
  }

  std::vector<Change> changes() const {
    MutexLock lock(mu_);
    return changes_;
  }

  // The first change after `from` (an index into changes()) that matches,
  // waiting up to `timeout`.
  std::optional<Change> WaitFor(size_t from, const std::function<bool(const Change&)>& match,
                                milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    MutexLock lock(mu_);
    for (size_t next = from;;) {
      for (; next < changes_.size(); ++next) {
        if (match(changes_[next])) return changes_[next];
      }
      if (!changed_.WaitUntil(mu_, deadline) && next == changes_.size()) return std::nullopt;
    }
  }

  size_t size() const {
    MutexLock lock(mu_);
    return changes_.size();
  }

 private:
  mutable Mutex mu_;  // guards changes_
  CondVar changed_;
  std::vector<Change> changes_ ABSL_GUARDED_BY(mu_);
};

class EtcdElectionTest : public ::testing::Test {
 protected:
  void StartCluster(int members) {
    EtcdClusterOptions options;
    options.members = members;
    auto cluster = EtcdCluster::Start(options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    sampler_ = std::thread([this] { Sample(); });
  }

  void TearDown() override {
    stop_sampling_.store(true);
    if (sampler_.joinable()) sampler_.join();
    {
      MutexLock lock(nodes_mu_);
      for (auto& election : elections_) election.reset();
    }
    EXPECT_LE(max_leaders_.load(), 1) << "two nodes reported leading() at once";
    ExpectOneLeaderAtATime();
    if (HasFailure() && cluster_ != nullptr) std::cerr << cluster_->Logs();
  }

  // A client of its own; node i starts with member i % size, so that the
  // nodes of a three-member cluster talk to different members.
  std::unique_ptr<Client> Connect(int node) {
    ClientOptions options;
    std::vector<std::string> endpoints = cluster_->endpoints();
    std::rotate(endpoints.begin(),
                endpoints.begin() + (node % static_cast<int>(endpoints.size())), endpoints.end());
    options.endpoints = endpoints;
    options.dial_timeout = seconds(5);
    options.retry_interval = milliseconds(100);
    auto client = Client::Connect(options);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  // Starts node `nodes()`, named Name(i) unless `candidate` is given.
  int AddNode(seconds ttl, std::string candidate = "") {
    const int node = static_cast<int>(clients_.size());
    clients_.push_back(Connect(node));
    if (clients_.back() == nullptr) return -1;
    ElectionOptions options;
    options.key = kKey;
    options.candidate = candidate.empty() ? Name(node) : candidate;
    options.ttl = ttl;
    auto election = Election::Start(*clients_.back(), options, recorder_.For(node));
    EXPECT_TRUE(election.ok()) << election.status();
    MutexLock lock(nodes_mu_);
    elections_.push_back(election.ok() ? *std::move(election) : nullptr);
    return node;
  }

  // Node i, which must be alive (only the test's thread destroys nodes).
  Election& node(int i) {
    MutexLock lock(nodes_mu_);
    return *elections_[static_cast<size_t>(i)];
  }

  // Resigns and destroys node i.
  void Destroy(int i) {
    std::unique_ptr<Election> gone;
    {
      MutexLock lock(nodes_mu_);
      gone = std::move(elections_[static_cast<size_t>(i)]);
    }
    gone.reset();
  }

  // The nodes that report leading() now.
  std::vector<int> Leaders() {
    MutexLock lock(nodes_mu_);
    std::vector<int> leaders;
    for (size_t i = 0; i < elections_.size(); ++i) {
      if (elections_[i] != nullptr && elections_[i]->leading()) {
        leaders.push_back(static_cast<int>(i));
      }
    }
    return leaders;
  }

  // Whether exactly one node leads and every live node names it as leader().
  bool OneAgreedLeader() {
    std::vector<int> leaders = Leaders();
    if (leaders.size() != 1) return false;
    const std::string name = node(leaders[0]).leader();
    MutexLock lock(nodes_mu_);
    for (const auto& election : elections_) {
      if (election != nullptr && election->leader() != name) return false;
    }
    return true;
  }

  static bool Eventually(const std::function<bool()>& condition, milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (!condition()) {
      if (Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(milliseconds(5));
    }
    return true;
  }

  // Whether `condition` holds at every check for `period`.
  static bool Always(const std::function<bool()>& condition, milliseconds period) {
    const auto end = Clock::now() + period;
    while (Clock::now() < end) {
      if (!condition()) return false;
      std::this_thread::sleep_for(milliseconds(5));
    }
    return true;
  }

  // The on_change calls of every node alternate, starting with true, and a
  // node gains leadership only while no other holds it.
  void ExpectOneLeaderAtATime() {
    std::vector<int> state;
    int holder = -1;
    for (const Change& change : recorder_.changes()) {
      if (state.size() <= static_cast<size_t>(change.node)) {
        state.resize(static_cast<size_t>(change.node) + 1, 0);
      }
      int& leading = state[static_cast<size_t>(change.node)];
      EXPECT_NE(leading, change.leading ? 1 : 0)
          << Name(change.node) << ": on_change(" << change.leading << ") twice in a row";
      leading = change.leading ? 1 : 0;
      if (change.leading) {
        EXPECT_EQ(holder, -1) << Name(change.node) << " gained leadership while "
                              << Name(holder) << " still held it";
        holder = change.node;
      } else if (holder == change.node) {
        holder = -1;
      }
    }
  }

  std::unique_ptr<EtcdCluster> cluster_;
  Recorder recorder_;  // outlives the elections that call it

 private:
  void Sample() {
    while (!stop_sampling_.load()) {
      const int leaders = static_cast<int>(Leaders().size());
      int seen = max_leaders_.load();
      while (leaders > seen && !max_leaders_.compare_exchange_weak(seen, leaders)) {
      }
      std::this_thread::sleep_for(milliseconds(2));
    }
  }

  std::vector<std::unique_ptr<Client>> clients_;  // outlive the elections
  Mutex nodes_mu_;  // guards elections_ (the sampler reads it)
  // Entries are reset (not erased) when a node is destroyed.
  std::vector<std::unique_ptr<Election>> elections_ ABSL_GUARDED_BY(nodes_mu_);
  std::atomic<bool> stop_sampling_{false};
  std::atomic<int> max_leaders_{0};
  std::thread sampler_;
};

TEST_F(EtcdElectionTest, BadOptionsAreInvalidArgument) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(1));
  std::unique_ptr<Client> client = Connect(0);
  ASSERT_NE(client, nullptr);
  ElectionOptions options;
  options.candidate = "a";
  EXPECT_THAT(Election::Start(*client, options, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("key")));
  options.key = kKey;
  options.candidate = "";
  EXPECT_THAT(Election::Start(*client, options, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("candidate")));
  options.candidate = "a";
  options.ttl = seconds(0);
  EXPECT_THAT(Election::Start(*client, options, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("ttl")));
}

TEST_F(EtcdElectionTest, OneOfThreeLeadsAndDestroyingItHandsOverAtOnce) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(1));
  for (int i = 0; i < 3; ++i) ASSERT_GE(AddNode(seconds(2)), 0);

  ASSERT_TRUE(Eventually([&] { return OneAgreedLeader(); }, seconds(5)));
  const int first = Leaders()[0];
  EXPECT_EQ(node(first).leader(), Name(first));
  const int64_t first_term = node(first).term();
  EXPECT_GT(first_term, 0);
  for (int i = 0; i < 3; ++i) {
    if (i != first) {
      EXPECT_EQ(node(i).term(), 0);
    }
  }
  // Stable while nothing happens (renewals every 667 ms).
  EXPECT_TRUE(Always([&] { return Leaders() == std::vector<int>{first}; }, milliseconds(1000)));

  const size_t mark = recorder_.size();
  const auto destroyed_at = Clock::now();
  Destroy(first);
  const auto destroy_returned = Clock::now();
  std::optional<Change> gained = recorder_.WaitFor(
      mark, [&](const Change& c) { return c.leading && c.node != first; }, seconds(3));
  ASSERT_TRUE(gained.has_value()) << "nobody took over";
  std::optional<Change> lost = recorder_.WaitFor(
      mark, [&](const Change& c) { return !c.leading && c.node == first; }, milliseconds(0));
  ASSERT_TRUE(lost.has_value()) << "the destroyed leader never called on_change(false)";
  EXPECT_LE(lost->at, destroy_returned);
  EXPECT_LT(lost->at, gained->at);
  const auto handover = gained->at - destroyed_at;
  std::cout << "handover after destroying the leader: " << Ms(handover)
            << " ms (destructor took " << Ms(destroy_returned - destroyed_at) << " ms)\n";
  EXPECT_LT(handover, milliseconds(1000));  // well under the 2 s ttl

  const int second = gained->node;
  ASSERT_TRUE(Eventually([&] { return OneAgreedLeader(); }, seconds(3)));
  EXPECT_EQ(Leaders(), std::vector<int>{second});
  EXPECT_EQ(node(second).leader(), Name(second));
  EXPECT_GT(node(second).term(), first_term);
}

TEST_F(EtcdElectionTest, TwoNodesWithTheSameCandidateNeverBothLead) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(1));
  ASSERT_GE(AddNode(seconds(2), "twin"), 0);
  ASSERT_GE(AddNode(seconds(2), "twin"), 0);
  ASSERT_TRUE(Eventually([&] { return OneAgreedLeader(); }, seconds(5)));
  const std::vector<int> leaders = Leaders();
  EXPECT_TRUE(Always([&] { return Leaders() == leaders; }, milliseconds(1000)));
  EXPECT_EQ(node(0).leader(), "twin");
  EXPECT_EQ(node(1).leader(), "twin");
  EXPECT_EQ(node(1 - leaders[0]).term(), 0);
}

TEST_F(EtcdElectionTest, LeaderThatStopsRenewingStepsDownBeforeAnotherTakesOver) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(1));
  const seconds ttl(2);
  for (int i = 0; i < 3; ++i) ASSERT_GE(AddNode(ttl), 0);
  ASSERT_TRUE(Eventually([&] { return OneAgreedLeader(); }, seconds(5)));
  const int old_leader = Leaders()[0];

  const size_t mark = recorder_.size();
  const auto cut_at = Clock::now();
  node(old_leader).SuspendForTest();  // no renewals, no resignation: as if partitioned
  std::optional<Change> gained = recorder_.WaitFor(
      mark, [&](const Change& c) { return c.leading && c.node != old_leader; }, ttl + seconds(3));
  ASSERT_TRUE(gained.has_value()) << "nobody took over";
  std::optional<Change> lost = recorder_.WaitFor(
      mark, [&](const Change& c) { return !c.leading && c.node == old_leader; }, milliseconds(0));
  ASSERT_TRUE(lost.has_value()) << "the cut-off leader still believes it leads";
  EXPECT_FALSE(node(old_leader).leading());
  EXPECT_LT(lost->at, gained->at) << "the old leader stepped down only after the new one led";
  std::cout << "cut-off leader stepped down after " << Ms(lost->at - cut_at)
            << " ms; another led after " << Ms(gained->at - cut_at) << " ms (gap "
            << Ms(gained->at - lost->at) << " ms, ttl " << Ms(ttl) << " ms)\n";
  EXPECT_LT(lost->at - cut_at, ttl);
  EXPECT_LE(gained->at - cut_at, ttl + milliseconds(1000));

  // Back from the partition: its lease has expired; it must follow.
  const int new_leader = gained->node;
  node(old_leader).ResumeForTest();
  ASSERT_TRUE(Eventually([&] { return node(old_leader).leader() == Name(new_leader); },
                         seconds(5)));
  EXPECT_TRUE(Always([&] { return Leaders() == std::vector<int>{new_leader}; },
                     milliseconds(1000)));
  EXPECT_EQ(node(old_leader).term(), 0);
}

TEST_F(EtcdElectionTest, KeyOrLeaseTakenAwayEndsTheTerm) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(1));
  for (int i = 0; i < 2; ++i) ASSERT_GE(AddNode(seconds(2)), 0);
  std::unique_ptr<Client> admin = Connect(0);
  ASSERT_NE(admin, nullptr);
  ASSERT_TRUE(Eventually([&] { return OneAgreedLeader(); }, seconds(5)));

  // An operator deletes the key: the leader hears it from its watch.
  int leader = Leaders()[0];
  int64_t term = node(leader).term();
  size_t mark = recorder_.size();
  etcdserverpb::DeleteRangeRequest del;
  del.set_key(kKey);
  ASSERT_TRUE(admin->DeleteRange(del, DeadlineIn(seconds(2))).ok());
  ASSERT_TRUE(recorder_
                  .WaitFor(
                      mark, [&](const Change& c) { return !c.leading && c.node == leader; },
                      seconds(2))
                  .has_value());
  ASSERT_TRUE(Eventually([&] { return OneAgreedLeader(); }, seconds(3)));
  leader = Leaders()[0];
  EXPECT_GT(node(leader).term(), term);

  // An operator revokes the leader's lease (which deletes the key too).
  term = node(leader).term();
  mark = recorder_.size();
  etcdserverpb::RangeRequest range;
  range.set_key(kKey);
  auto read = admin->Range(range, DeadlineIn(seconds(2)));
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->kvs_size(), 1);
  EXPECT_EQ(read->kvs(0).create_revision(), term);
  ASSERT_TRUE(admin->LeaseRevoke(read->kvs(0).lease(), DeadlineIn(seconds(2))).ok());
  ASSERT_TRUE(recorder_
                  .WaitFor(
                      mark, [&](const Change& c) { return !c.leading && c.node == leader; },
                      seconds(2))
                  .has_value());
  ASSERT_TRUE(Eventually([&] { return OneAgreedLeader(); }, seconds(3)));
  EXPECT_GT(node(Leaders()[0]).term(), term);
}

TEST_F(EtcdElectionTest, ResignHandsOverAndStopsCampaigning) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(1));
  for (int i = 0; i < 2; ++i) ASSERT_GE(AddNode(seconds(2)), 0);
  ASSERT_TRUE(Eventually([&] { return OneAgreedLeader(); }, seconds(5)));
  const int first = Leaders()[0];
  const int second = 1 - first;

  const size_t mark = recorder_.size();
  const auto resign_at = Clock::now();
  node(first).Resign();
  // on_change(false) ran before Resign returned.
  EXPECT_TRUE(recorder_
                  .WaitFor(
                      mark, [&](const Change& c) { return !c.leading && c.node == first; },
                      milliseconds(0))
                  .has_value());
  EXPECT_FALSE(node(first).leading());
  std::optional<Change> gained = recorder_.WaitFor(
      mark, [&](const Change& c) { return c.leading && c.node == second; }, seconds(2));
  ASSERT_TRUE(gained.has_value());
  std::cout << "handover after Resign(): " << Ms(gained->at - resign_at) << " ms\n";
  EXPECT_LT(gained->at - resign_at, milliseconds(1000));
  node(first).Resign();  // idempotent
  ASSERT_TRUE(Eventually([&] { return OneAgreedLeader(); }, seconds(3)));

  // The resigned node only watches: once the other leaves, nobody leads.
  Destroy(second);
  ASSERT_TRUE(Eventually([&] { return node(first).leader().empty(); }, seconds(3)));
  EXPECT_TRUE(Always([&] { return Leaders().empty(); }, milliseconds(1000)));
}

TEST_F(EtcdElectionTest, EtcdLeaderFailoverNeverMakesTwoLeaders) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(3));
  const seconds ttl(3);
  for (int i = 0; i < 3; ++i) ASSERT_GE(AddNode(ttl), 0);
  ASSERT_TRUE(Eventually([&] { return OneAgreedLeader(); }, seconds(5)));
  const int before = Leaders()[0];

  // The harder case: the etcd leader is the member the leading node's client
  // talks to (node i starts with member i), so its keep-alive stream breaks.
  ASSERT_TRUE(cluster_->MoveLeader(before).ok());
  absl::StatusOr<int> etcd_leader = cluster_->LeaderIndex(seconds(5));
  ASSERT_TRUE(etcd_leader.ok()) << etcd_leader.status();
  EXPECT_EQ(*etcd_leader, before);
  const size_t mark = recorder_.size();
  const auto killed_at = Clock::now();
  cluster_->Kill(*etcd_leader);
  ASSERT_TRUE(cluster_->LeaderIndex(seconds(5)).ok());
  const auto etcd_failover = Clock::now() - killed_at;

  // One leader that everybody agrees on, also a ttl later (the nodes that
  // talked to the dead member have moved to another by then).
  // (The sampler checks that there are never two; a leader whose renewals
  // all failed for ttl - margin may step down meanwhile, which is allowed.)
  ASSERT_TRUE(Eventually([&] { return OneAgreedLeader(); }, seconds(10)));
  EXPECT_TRUE(Always([&] { return Leaders().size() <= 1; }, ttl));
  ASSERT_TRUE(Eventually([&] { return OneAgreedLeader(); }, seconds(5)));
  const int after = Leaders()[0];
  const std::vector<Change> changes = recorder_.changes();
  std::cout << "etcd leader m" << *etcd_leader << " killed; etcd failover took "
            << Ms(etcd_failover) << " ms; leader " << Name(before) << " -> " << Name(after)
            << "; on_change calls since: " << changes.size() - mark << "\n";
}

}  // namespace
}  // namespace muster::etcd
