// musterd's xDS server in cluster mode: two nodes on a real etcd cluster,
// each serving xDS from its own view. A gRPC client (gRPC's own xDS client)
// bootstrapped on node 1 follows what is registered, reported and removed
// through node 0; a raw ADS stream to node 0 is answered from node 0's view.
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "integration/cluster_fixture.h"
#include "integration/greeter_backend.h"
#include "integration/xds_greeter.h"

namespace muster::testing {
namespace {

namespace json = boost::json;
using envoy::service::discovery::v3::DiscoveryResponse;

class XdsClusterTest : public ClusterFixture {
 protected:
  void SetUp() override {
    ClusterFixture::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_FALSE(nodes_[1]->xds_address().empty());
    setenv("GRPC_XDS_BOOTSTRAP_CONFIG", XdsBootstrap(nodes_[1]->xds_address()).c_str(), 1);
  }

  GreeterBackend& Backend(const std::string& id) {
    const std::string host = StrCat("127.0.0.", 2 + backends_.size());
    auto& b = backends_.emplace_back(std::make_unique<GreeterBackend>(id, host));
    EXPECT_TRUE(b->Start()) << "cannot serve on " << host;
    return *b;
  }

  // Registers `b` through node `i`; whether it was stored.
  bool Registered(int i, const std::string& service, const GreeterBackend& b,
                  json::object extra = {}) {
    if (!extra.contains("ttl_seconds")) extra["ttl_seconds"] = 600;
    const wire::HttpResponse r =
        Must(node(i).Put(InstancePath(service, b.id()), RegisterBody(b.address(), extra)));
    EXPECT_TRUE(r.status == 200 || r.status == 201) << r.status << " " << r.body;
    return r.status == 200 || r.status == 201;
  }

  std::vector<std::unique_ptr<GreeterBackend>> backends_;
};

// Written through node 0, followed through node 1's xDS server: a
// registration, a check reported critical, a deregistration.
TEST_F(XdsClusterTest, EachNodeServesTheClusterFromItsOwnView) {
  GreeterBackend& a = Backend("cx-a");
  GreeterBackend& b = Backend("cx-b");
  json::array checks = {
      json::object{{"id", "app"}, {"type", "ttl"}, {"ttl", "1h"}, {"status", "passing"}}};
  ASSERT_TRUE(Registered(0, "clustered", a, {{"checks", checks}}));
  XdsGreeter client("clustered");
  ASSERT_TRUE(client.Reaches("cx-a"));

  ASSERT_TRUE(Registered(0, "clustered", b));
  EXPECT_TRUE(client.Reaches("cx-b"));

  const wire::HttpResponse reported = Must(node(0).Put(
      StrCat(InstancePath("clustered", "cx-a"), "/checks/app"), R"({"status":"critical"})"));
  ASSERT_EQ(reported.status, 200) << reported.body;
  EXPECT_TRUE(client.Avoids("cx-a"));

  ASSERT_EQ(Must(node(0).Delete(InstancePath("clustered", "cx-b"))).status, 200);
  EXPECT_TRUE(WaitUntil([&] { return client.Call().rfind("!", 0) == 0; }, kPushed))
      << "calls still answered with no healthy instance left";

  // Node 0 serves xDS too, from its own view: a raw stream sees cx-a back
  // once it passes again.
  ASSERT_EQ(Must(node(1).Put(StrCat(InstancePath("clustered", "cx-a"), "/checks/app"),
                             R"({"status":"passing"})"))
                .status,
            200);
  EXPECT_TRUE(client.Reaches("cx-a"));
  RawAdsStream stream(nodes_[0]->xds_address());
  ASSERT_TRUE(stream.FollowEndpoints({"clustered"}));
  DiscoveryResponse response;
  ASSERT_TRUE(stream.Read(&response));
  std::vector<RawAdsStream::Assignment> assignments = RawAdsStream::Assignments(response);
  ASSERT_EQ(assignments.size(), 1u);
  ASSERT_EQ(assignments[0].endpoints_size(), 1);
  EXPECT_EQ(assignments[0].endpoints(0).locality().sub_zone(), "cx-a");
}

}  // namespace
}  // namespace muster::testing
