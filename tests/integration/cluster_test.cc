// musterd's cluster mode (--store etcd) on a real three-member etcd cluster:
// two musterd nodes with no state of their own see and push each other's
// changes; one etcd member dies under load and nothing acknowledged is lost;
// a musterd node dies and SDK clients fail over to the other; SDK clients on
// etcd directly and musterd nodes share one catalog.
#include <atomic>
#include <chrono>
#include <iostream>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/wire/http_client.h"
#include "muster/registry.h"
#include "support/api_helpers.h"
#include "support/blocking_query.h"
#include "support/check_targets.h"
#include "support/etcd_cluster.h"
#include "support/musterd_process.h"
#include "support/status_matchers.h"
#include "integration/cluster_fixture.h"

namespace muster::testing {
namespace {

using std::chrono::milliseconds;
using ::testing::Contains;
using ::testing::ElementsAre;

using ClusterTest = ClusterFixture;

// A registration on node A is listed by node B and pushed to B's watchers; a
// heartbeat and a deregistration through B act on it; both nodes agree on the
// revisions, which are etcd's.
TEST_F(ClusterTest, NodesShareOneCatalog) {
  auto stream = wire::SseStream::Open(nodes_[1]->address(), wire::WatchTarget("", {"orders"}));
  ASSERT_THAT(stream, IsOk());

  auto registered = Must(node(0).Put(InstancePath("orders", "o-1"), RegisterBody("10.0.0.1:80")));
  ASSERT_EQ(registered.status, 201) << registered.body;
  const uint64_t revision = U64(JsonOf(registered).at("modify_revision"));
  // Node A answers once its own view has the write: read your writes.
  EXPECT_THAT(List(0, "orders").ids(), ElementsAre("o-1"));

  auto event = NextEvent(**stream, kWait);
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->type, "registered");
  EXPECT_EQ(event->id, "o-1");
  EXPECT_EQ(event->revision, revision);
  ASSERT_TRUE(WaitForList(1, "orders", [](const ListResult& l) { return l.ids().size() == 1; }));
  EXPECT_EQ(List(1, "orders").instances[0].modify_revision, revision);

  auto beat = Must(node(1).Put(HeartbeatPath("orders", "o-1"), ""));
  EXPECT_EQ(beat.status, 200) << beat.body;
  EXPECT_EQ(Must(node(1).Put(HeartbeatPath("orders", "nobody"), "")).status, 404);

  auto removed = Must(node(1).Delete(InstancePath("orders", "o-1")));
  ASSERT_EQ(removed.status, 200) << removed.body;
  event = NextEvent(**stream, kWait);
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->type, "deregistered");
  ASSERT_TRUE(WaitForList(0, "orders", [](const ListResult& l) { return l.ids().empty(); }));
  EXPECT_EQ(Must(node(0).Delete(InstancePath("orders", "o-1"))).status, 404);
}

// A lease that lapses in etcd expires the instance on every node, and
// watchers hear "expired".
TEST_F(ClusterTest, ExpiryReachesEveryNode) {
  auto stream = wire::SseStream::Open(nodes_[1]->address(), wire::WatchTarget("", {"short"}));
  ASSERT_THAT(stream, IsOk());
  auto registered = Must(node(0).Put(InstancePath("short", "s-1"),
                                     RegisterBody("10.0.0.1:80", {{"ttl_seconds", 1}})));
  ASSERT_EQ(registered.status, 201) << registered.body;
  auto first = NextEvent(**stream, kWait);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->type, "registered");
  auto expired = NextEvent(**stream, kWait);
  ASSERT_TRUE(expired.has_value());
  EXPECT_EQ(expired->type, "expired");
  EXPECT_EQ(expired->id, "s-1");
  ASSERT_TRUE(WaitForList(0, "short", [](const ListResult& l) { return l.ids().empty(); }));
}

// Blocking queries on one node wake for a change made through the other:
// parked on node 1 first, then woken by a register on node 0 well before the
// query's wait ends (an answer at the wait's end would list p-1 as well).
TEST_F(ClusterTest, BlockingQueryWakesForAChangeOnTheOtherNode) {
  ListResult before = List(1, "pay");
  ASSERT_TRUE(before.index_header.has_value());
  BlockingQuery blocked(
      nodes_[1]->address(),
      ListPath("pay", "index=" + std::to_string(*before.index_header) + "&wait=60s"),
      std::chrono::seconds(90));
  ASSERT_TRUE(WaitForBlockingQueries(nodes_[1]->address(), 1));
  const auto changed = std::chrono::steady_clock::now();
  Must(node(0).Put(InstancePath("pay", "p-1"), RegisterBody("10.0.0.2:80")));
  ASSERT_TRUE(blocked.AnsweredWithin(changed, std::chrono::seconds(30)));
  EXPECT_THAT(ParseList(*blocked.Answer()).ids(), ElementsAre("p-1"));
}

// SDK clients on etcd directly (EtcdRegistry) and musterd nodes see each
// other's instances: one layout, one catalog.
TEST_F(ClusterTest, EtcdRegistryAndMusterdShareInstances) {
  EtcdRegistryOptions options;
  options.endpoints = etcd_->endpoints();
  options.prefix = "/cluster-test";
  auto registry = NewEtcdRegistry(options);
  ASSERT_THAT(registry, IsOk());
  Instance direct;
  direct.service = "mixed";
  direct.id = "direct";
  direct.address = "10.0.0.3:80";
  ASSERT_THAT((*registry)->Register(direct, CallOptions{}), IsOk());
  Must(node(0).Put(InstancePath("mixed", "via-musterd"), RegisterBody("10.0.0.4:80")));
  ASSERT_TRUE(WaitForList(1, "mixed", [](const ListResult& l) { return l.ids().size() == 2; }));
  auto list = (*registry)->ListServices(ServiceQuery{"default", "mixed", ""}, CallOptions{});
  ASSERT_THAT(list, IsOk());
  EXPECT_EQ(list->instances.size(), 2u);
}

// One etcd member (the leader) is killed under steady registrations,
// heartbeats and lists through both nodes: every acknowledged registration is
// still listed afterwards, by both nodes, and calls succeed again after the
// election.
TEST_F(ClusterTest, EtcdMemberDeathLosesNothingAcknowledged) {
  std::atomic<bool> stop{false};
  std::atomic<bool> killed{false};
  std::atomic<int> ok_after_kill{0};
  std::atomic<int> failed{0};
  std::mutex mu;
  std::set<std::string> acknowledged;  // guarded by mu
  std::vector<std::thread> workers;
  for (int w = 0; w < 2; ++w) {
    workers.emplace_back([&, w] {
      wire::HttpClient http(nodes_[w]->address());
      for (int i = 0; !stop.load(); ++i) {
        const std::string id = "n" + std::to_string(w) + "-" + std::to_string(i);
        auto put = http.Put(InstancePath("load", id),
                            RegisterBody("10.0.1.1:80", {{"ttl_seconds", 10}}));
        if (put.ok() && (put->status == 201 || put->status == 200)) {
          std::lock_guard lock(mu);
          acknowledged.insert(id);
          if (killed.load()) ++ok_after_kill;
        } else {
          ++failed;
        }
        if (i > 0) (void)http.Put(HeartbeatPath("load", "n" + std::to_string(w) + "-0"), "");
        (void)http.Get(ListPath("load"));
        std::this_thread::sleep_for(milliseconds(10));
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  absl::StatusOr<int> leader = etcd_->LeaderIndex(std::chrono::seconds(5));
  ASSERT_THAT(leader, IsOk());
  etcd_->Kill(*leader);
  killed = true;
  std::this_thread::sleep_for(std::chrono::seconds(3));
  stop = true;
  for (auto& t : workers) t.join();

  EXPECT_GT(ok_after_kill.load(), 0) << "no registration succeeded after the etcd leader died";
  std::lock_guard lock(mu);
  for (int n = 0; n < 2; ++n) {
    std::set<std::string> listed;
    ASSERT_TRUE(WaitForList(n, "load", [&](const ListResult& l) {
      const std::vector<std::string> ids = l.ids();
      listed = std::set<std::string>(ids.begin(), ids.end());
      return std::includes(listed.begin(), listed.end(), acknowledged.begin(), acknowledged.end());
    })) << "node " << n << " lists " << listed.size() << " of " << acknowledged.size()
        << " acknowledged registrations";
  }
  RecordProperty("acknowledged", static_cast<int>(acknowledged.size()));
  RecordProperty("failed_calls", failed.load());
}

// A musterd node dies: an SDK client given both nodes keeps registering,
// heartbeating and listing through the other.
TEST_F(ClusterTest, ClientsFailOverToAnotherNode) {
  MusterRegistryOptions options;
  options.addresses = {nodes_[0]->address(), nodes_[1]->address()};
  auto registry = NewMusterRegistry(options);
  ASSERT_THAT(registry, IsOk());
  Instance in;
  in.service = "failover";
  in.id = "f-1";
  in.address = "10.0.0.5:80";
  ASSERT_THAT((*registry)->Register(in, CallOptions{}), IsOk());
  nodes_[0]->Kill9();
  EXPECT_THAT((*registry)->UpdateService(KeyOf(in), CallOptions{}), IsOk());
  in.id = "f-2";
  EXPECT_THAT((*registry)->Register(in, CallOptions{}), IsOk());
  auto list = (*registry)->ListServices(ServiceQuery{"default", "failover", ""}, CallOptions{});
  ASSERT_THAT(list, IsOk());
  std::vector<std::string> ids;
  for (const Instance& i : list->instances) ids.push_back(i.id);
  EXPECT_THAT(ids, ElementsAre("f-1", "f-2"));
}

// When etcd loses its quorum (two of three members gone; the third answers
// but has no leader), a node answers lists from its last state, says in
// /healthz that it does not follow etcd, and refuses writes with 503 or 504;
// once a quorum is back it follows again and writes succeed.
TEST_F(ClusterTest, WithoutEtcdNodesServeTheLastStateAndRefuseWrites) {
  ASSERT_EQ(Must(node(0).Put(InstancePath("kept", "k-1"), RegisterBody("10.0.0.6:80"))).status,
            201);
  etcd_->Kill(0);
  etcd_->Kill(1);

  EXPECT_THAT(List(0, "kept").ids(), ElementsAre("k-1"));
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  bool following = true;
  while (following && std::chrono::steady_clock::now() < deadline) {
    following = JsonOf(Must(node(0).Get("/healthz"))).at("following").as_bool();
    if (following) std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_FALSE(following) << "the node never noticed that etcd is gone";
  auto refused = Must(node(0).Put(InstancePath("kept", "k-2"), RegisterBody("10.0.0.6:81")));
  EXPECT_THAT(refused.status, ::testing::AnyOf(503, 504)) << refused.body;
  EXPECT_EQ(Must(node(0).Put(HeartbeatPath("kept", "k-1"), "")).status / 100, 5);

  ASSERT_THAT(etcd_->Restart(0), IsOk());
  ASSERT_TRUE(WaitForList(0, "kept", [](const ListResult& l) { return l.ids().size() == 1; }));
  const auto back = std::chrono::steady_clock::now() + kWait;
  int status = 0;
  while (status != 201 && std::chrono::steady_clock::now() < back) {
    auto put = node(0).Put(InstancePath("kept", "k-2"), RegisterBody("10.0.0.6:81"));
    status = put.ok() ? put->status : 0;
    if (status != 201) std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_EQ(status, 201);
  EXPECT_TRUE(JsonOf(Must(node(0).Get("/healthz"))).at("following").as_bool());
}

// Exactly one node leads, every node names it, and when it dies (kill -9,
// no resignation) the other takes over once its election lease lapses.
TEST_F(ClusterTest, LeadershipMovesWhenTheLeaderDies) {
  auto health = [&](int i) { return JsonOf(Must(node(i).Get("/healthz"))); };
  const int leader = Leader();
  ASSERT_GE(leader, 0);
  const int other = 1 - leader;
  const std::string leader_address = nodes_[leader]->address();
  EXPECT_EQ(health(leader).at("leader_address").as_string(), leader_address);
  EXPECT_TRUE(WaitFor([&] {
    return health(other).at("leader_address").as_string() == leader_address;
  })) << "the follower does not name the leader";
  EXPECT_GT(U64(health(leader).at("term")), 0u);

  nodes_[leader]->Kill9();
  const auto killed = std::chrono::steady_clock::now();
  bool took_over = false;
  while (!took_over && std::chrono::steady_clock::now() < killed + kWait) {
    took_over = health(other).at("leader").as_bool();
    if (!took_over) std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_TRUE(took_over) << "leadership did not move";
  const auto handover = std::chrono::steady_clock::now() - killed;
  // The dead leader's 2 s lease has to lapse first (etcd checks every 500 ms).
  EXPECT_LT(handover, std::chrono::seconds(4));
  RecordProperty("handover_ms", static_cast<int>(
      std::chrono::duration_cast<milliseconds>(handover).count()));
  EXPECT_EQ(health(other).at("leader_address").as_string(), nodes_[other]->address());
}

// A node that stops cleanly resigns: the other leads at once.
TEST_F(ClusterTest, AStoppingLeaderHandsOverAtOnce) {
  const int leader = Leader();
  ASSERT_GE(leader, 0);
  ASSERT_EQ(nodes_[leader]->Terminate(), 0);
  const auto stopped = std::chrono::steady_clock::now();
  bool took_over = false;
  while (!took_over && std::chrono::steady_clock::now() < stopped + kWait) {
    took_over = Leading(1 - leader);
    if (!took_over) std::this_thread::sleep_for(milliseconds(20));
  }
  ASSERT_TRUE(took_over);
  EXPECT_LT(std::chrono::steady_clock::now() - stopped, milliseconds(1500))
      << "a clean stop should hand over well before the 2 s lease lapses";
}

// Active checks in cluster mode: only the leader runs them (each instance is
// checked once), every node sees the transitions, and a new leader takes the
// checks over when the old one dies.
TEST_F(ClusterTest, OnlyTheLeaderRunsChecksAndANewLeaderTakesOver) {
  HttpTarget target;
  const int leader = Leader();
  ASSERT_GE(leader, 0);
  const int other = 1 - leader;
  auto active = [&](int i) { return U64(JsonOf(Must(node(i).Get("/healthz"))).at("active_checks")); };
  auto health_on = [&](int i, Health want) {
    return WaitForList(i, "web", [&](const ListResult& l) {
      return l.instances.size() == 1 && l.instances[0].health == want;
    });
  };

  // Registered through the follower; checked by the leader.
  boost::json::object check{{"type", "http"}, {"interval", "100ms"}, {"rise", 1}, {"fall", 1}};
  auto registered = Must(node(other).Put(
      InstancePath("web", "w-1"),
      RegisterBody(target.address(), {{"checks", boost::json::array{check}}})));
  ASSERT_EQ(registered.status, 201) << registered.body;
  EXPECT_EQ(JsonOf(registered).at("health").as_string(), "critical");
  ASSERT_TRUE(health_on(other, Health::kPassing)) << "the check never passed";
  ASSERT_TRUE(health_on(leader, Health::kPassing));
  EXPECT_EQ(active(leader), 1u);
  EXPECT_EQ(active(other), 0u);

  auto stream = wire::SseStream::Open(nodes_[other]->address(), wire::WatchTarget("", {"web"}));
  ASSERT_THAT(stream, IsOk());
  target.set_status(500);
  std::optional<WatchEvent> down;
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (!down && std::chrono::steady_clock::now() < deadline) {
    auto raw = (*stream)->Next(milliseconds(500));
    if (!raw.ok()) continue;
    auto e = ParseEvent(*raw);
    if (e && e->type == "health") down = e;
  }
  ASSERT_TRUE(down.has_value()) << "no health event reached the follower";
  ASSERT_TRUE(down->check.has_value());
  EXPECT_EQ(down->check->status, Health::kCritical);
  EXPECT_NE(down->check->output.find("500"), std::string::npos) << down->check->output;
  EXPECT_EQ(down->instance.health, Health::kCritical);

  // The leader dies; the other node leads and checks from then on.
  nodes_[leader]->Kill9();
  ASSERT_TRUE(WaitFor([&] { return Leading(other); })) << "leadership did not move";
  target.set_status(200);
  ASSERT_TRUE(health_on(other, Health::kPassing)) << "the new leader does not check";
  EXPECT_EQ(active(other), 1u);
}

// The GeeRPC protocol works across nodes: a server announced to node A is
// listed by node B, and a repeated announcement through B only renews it.
TEST_F(ClusterTest, GeerpcAnnouncementsCrossNodes) {
  auto announce = [&](int i, const std::string& address) {
    wire::HttpRequest request{"POST", "/_geerpc_/registry", "", {}};
    request.headers.emplace_back("X-Geerpc-Server", address);
    return Must(node(i).Do(request));
  };
  auto servers = [&](int i) {
    wire::HttpResponse r = Must(node(i).Get("/_geerpc_/registry"));
    return r.Header("X-Geerpc-Servers").value_or("");
  };
  ASSERT_EQ(announce(0, "tcp@127.0.0.1:9001").status, 200);
  ASSERT_EQ(announce(0, "tcp@127.0.0.1:9002").status, 200);
  EXPECT_EQ(servers(0), "tcp@127.0.0.1:9001,tcp@127.0.0.1:9002");
  ASSERT_TRUE(WaitFor([&] { return servers(1) == "tcp@127.0.0.1:9001,tcp@127.0.0.1:9002"; }))
      << servers(1);
  const uint64_t before = List(1, "geerpc").revision;
  ASSERT_EQ(announce(1, "tcp@127.0.0.1:9001").status, 200);  // a renewal: nothing changes
  EXPECT_EQ(List(1, "geerpc").instances.size(), 2u);
  EXPECT_EQ(List(0, "geerpc").revision, before);
}

// /healthz says which store a node runs on and whether it follows etcd.
TEST_F(ClusterTest, HealthzReportsTheStore) {
  auto health = JsonOf(Must(node(0).Get("/healthz")));
  EXPECT_EQ(health.at("store").as_string(), "etcd");
  EXPECT_TRUE(health.at("following").as_bool());
}

}  // namespace
}  // namespace muster::testing
