// The Consul API in cluster mode: two musterd nodes on one etcd cluster are
// two Consul agents of one catalog. A service registered through one is
// read, blocked on and passed through the other (a TTL pass at a node that
// does not lead is forwarded to the one that keeps the check timers), and
// both give the same X-Consul-Index for the same state.
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/strings.h"
#include "integration/cluster_fixture.h"
#include "support/blocking_query.h"

namespace muster::testing {
namespace {

namespace json = boost::json;

class ConsulClusterTest : public ClusterFixture {
 protected:
  // Status of check `check_id` in node i's /v1/health/checks/SERVICE ("" when absent).
  std::string CheckStatus(int i, const std::string& service, const std::string& check_id) {
    auto r = node(i).Get("/v1/health/checks/" + service);
    if (!r.ok() || r->status != 200) return "";
    json::value checks = JsonOf(*r);
    for (const auto& c : checks.as_array()) {
      if (c.at("CheckID").as_string() == check_id) return std::string(c.at("Status").as_string());
    }
    return "";
  }

  uint64_t IndexOf(const wire::HttpResponse& r) {
    return std::stoull(r.Header("X-Consul-Index").value_or("0"));
  }
};

TEST_F(ConsulClusterTest, TwoNodesAreTwoAgentsOfOneCatalog) {
  const int leader = Leader();
  ASSERT_GE(leader, 0);
  const int follower = 1 - leader;

  // Registered at the follower, seen at the leader.
  auto r = Must(node(follower).Put(
      "/v1/agent/service/register",
      R"({"Name":"pay","ID":"pay-1","Address":"127.0.0.1","Port":7200,"Check":{"TTL":"3s"}})"));
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_TRUE(WaitFor([&] { return CheckStatus(leader, "pay", "service:pay-1") == "critical"; }));

  // Passed at the follower: forwarded to the leader, which keeps the timer.
  r = Must(node(follower).Put("/v1/agent/check/pass/service:pay-1?note=ok", ""));
  ASSERT_EQ(r.status, 200) << r.body;
  for (int i : {0, 1}) {
    EXPECT_TRUE(WaitFor([&] { return CheckStatus(i, "pay", "service:pay-1") == "passing"; }))
        << "node " << i;
  }

  // Both nodes answer the same index for the same state (etcd's revision).
  ASSERT_TRUE(WaitFor([&] {
    return IndexOf(Must(node(0).Get("/v1/health/service/pay"))) ==
           IndexOf(Must(node(1).Get("/v1/health/service/pay")));
  }));

  // A blocking query at the leader wakes for a registration at the follower.
  const uint64_t index = IndexOf(Must(node(leader).Get("/v1/health/service/pay")));
  BlockingQuery query(nodes_[leader]->address(),
                      StrCat("/v1/health/service/pay?index=", index, "&wait=60s"),
                      milliseconds(90000));
  ASSERT_TRUE(WaitForBlockingQueries(nodes_[leader]->address(), 1));
  const auto changed = BlockingQuery::Clock::now();
  r = Must(node(follower).Put("/v1/agent/service/register",
                              R"({"Name":"pay","ID":"pay-2","Address":"127.0.0.1","Port":7201})"));
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_TRUE(query.AnsweredWithin(changed, milliseconds(30000)));
  ASSERT_EQ(query.Answer()->status, 200);
  EXPECT_GT(IndexOf(*query.Answer()), index);
  EXPECT_EQ(JsonOf(*query.Answer()).as_array().size(), 2u);

  // No more passes: the check lapses, seen at both nodes.
  for (int i : {0, 1}) {
    EXPECT_TRUE(WaitFor([&] { return CheckStatus(i, "pay", "service:pay-1") == "critical"; }))
        << "node " << i;
  }

  // The leader is the elected node.
  auto status = Must(node(follower).Get("/v1/status/leader"));
  EXPECT_EQ(JsonOf(status).as_string(), nodes_[leader]->address());
}

}  // namespace
}  // namespace muster::testing
