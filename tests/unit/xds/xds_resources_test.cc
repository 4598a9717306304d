// The resources musterd's xDS server builds (server/xds/xds_resources.h):
// target names, and what each resource says, read back through the protos.
#include "server/xds/xds_resources.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/extensions/filters/http/router/v3/router.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"

namespace muster::xds {
namespace {

using ::testing::HasSubstr;
namespace endpoint = envoy::config::endpoint::v3;
namespace hcm = envoy::extensions::filters::network::http_connection_manager::v3;

std::shared_ptr<const Instance> In(const std::string& id, const std::string& address,
                                   uint32_t weight = 100,
                                   std::map<std::string, std::string> metadata = {}) {
  auto in = std::make_shared<Instance>();
  in->service = "orders";
  in->id = id;
  in->address = address;
  in->weight = weight;
  for (auto& [k, v] : metadata) in->metadata[k] = v;
  return in;
}

TEST(XdsTargetTest, NamesAServiceANamespaceAndAVersion) {
  const Limits limits;
  absl::StatusOr<Target> plain = ParseTarget("orders", limits);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->ns, "default");
  EXPECT_EQ(plain->service, "orders");
  EXPECT_EQ(plain->version, "");
  absl::StatusOr<Target> ns = ParseTarget("prod/orders", limits);
  ASSERT_TRUE(ns.ok());
  EXPECT_EQ(ns->ns, "prod");
  EXPECT_EQ(ns->service, "orders");
  absl::StatusOr<Target> version = ParseTarget("prod/orders/v2.1", limits);
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(version->version, "v2.1");
}

TEST(XdsTargetTest, MalformedNamesSayWhatIsWrong) {
  const Limits limits;
  EXPECT_THAT(ParseTarget("a/b/c/d", limits).status().message(), HasSubstr("more than three parts"));
  EXPECT_THAT(ParseTarget("", limits).status().message(), HasSubstr("service"));
  EXPECT_THAT(ParseTarget("prod/", limits).status().message(), HasSubstr("service"));
  EXPECT_THAT(ParseTarget("/orders", limits).status().message(), HasSubstr("namespace"));
  EXPECT_THAT(ParseTarget("prod/orders/", limits).status().message(), HasSubstr("version"));
  EXPECT_THAT(ParseTarget("ord ers", limits).status().message(), HasSubstr("service"));
  EXPECT_THAT(ParseTarget(std::string(200, 'a'), limits).status().message(), HasSubstr("service"));
  EXPECT_THAT(ParseTarget("or\xff", limits).status().message(), HasSubstr("xDS resource name"));
}

TEST(XdsTypeTest, TypeUrlsRoundTrip) {
  for (ResourceType t : {ResourceType::kListener, ResourceType::kRoute, ResourceType::kCluster,
                         ResourceType::kEndpoints}) {
    EXPECT_EQ(TypeOfUrl(TypeUrl(t)), t);
  }
  EXPECT_EQ(TypeOfUrl("type.googleapis.com/envoy.config.core.v3.Node"), std::nullopt);
  EXPECT_EQ(ShortName(ResourceType::kEndpoints), "EDS");
}

// The listener routes every call to the cluster of the same name, inline,
// through the router filter.
TEST(XdsResourceTest, TheListenerRoutesEverythingToTheCluster) {
  google::protobuf::Any any = ListenerResource("prod/orders");
  EXPECT_EQ(any.type_url(), TypeUrl(ResourceType::kListener));
  envoy::config::listener::v3::Listener listener;
  ASSERT_TRUE(any.UnpackTo(&listener));
  EXPECT_EQ(listener.name(), "prod/orders");
  hcm::HttpConnectionManager manager;
  ASSERT_TRUE(listener.api_listener().api_listener().UnpackTo(&manager));
  ASSERT_TRUE(manager.has_route_config());
  ASSERT_EQ(manager.route_config().virtual_hosts_size(), 1);
  const auto& host = manager.route_config().virtual_hosts(0);
  EXPECT_THAT(host.domains(), ::testing::ElementsAre("*"));
  ASSERT_EQ(host.routes_size(), 1);
  EXPECT_TRUE(host.routes(0).match().has_prefix());
  EXPECT_EQ(host.routes(0).match().prefix(), "");
  EXPECT_EQ(host.routes(0).route().cluster(), "prod/orders");
  ASSERT_EQ(manager.http_filters_size(), 1);
  envoy::extensions::filters::http::router::v3::Router router;
  EXPECT_TRUE(manager.http_filters(0).typed_config().UnpackTo(&router));

  envoy::config::route::v3::RouteConfiguration rds;
  ASSERT_TRUE(RouteResource("prod/orders").UnpackTo(&rds));
  EXPECT_EQ(rds.name(), "prod/orders");
  EXPECT_EQ(rds.virtual_hosts(0).routes(0).route().cluster(), "prod/orders");
}

TEST(XdsResourceTest, TheClusterIsEdsOverAdsRoundRobin) {
  envoy::config::cluster::v3::Cluster cluster;
  ASSERT_TRUE(ClusterResource("orders").UnpackTo(&cluster));
  EXPECT_EQ(cluster.name(), "orders");
  EXPECT_EQ(cluster.type(), envoy::config::cluster::v3::Cluster::EDS);
  EXPECT_TRUE(cluster.eds_cluster_config().eds_config().has_ads());
  EXPECT_EQ(cluster.eds_cluster_config().service_name(), "orders");
  EXPECT_EQ(cluster.lb_policy(), envoy::config::cluster::v3::Cluster::ROUND_ROBIN);
}

// One locality per instance, weighted by the instance's weight, its zone
// from metadata; IPv6 hosts unbracketed; host names left out and counted;
// two instances on one address folded into one endpoint with both weights.
TEST(XdsResourceTest, EndpointsCarryWeightsAsLocalities) {
  EndpointsBuilt built = EndpointsResource(
      "orders",
      {In("a", "127.0.0.1:9000", 300, {{"zone", "eu-1"}}), In("b", "[::1]:9001", 100),
       In("c", "orders.internal:9002"), In("d", "127.0.0.1:9000", 50)},
      "zone");
  EXPECT_EQ(built.endpoints, 2u);
  EXPECT_EQ(built.skipped_hostnames, 1u);
  endpoint::ClusterLoadAssignment cla;
  ASSERT_TRUE(built.resource.UnpackTo(&cla));
  EXPECT_EQ(cla.cluster_name(), "orders");
  ASSERT_EQ(cla.endpoints_size(), 2);
  const endpoint::LocalityLbEndpoints& a = cla.endpoints(0);
  EXPECT_EQ(a.locality().zone(), "eu-1");
  EXPECT_EQ(a.locality().sub_zone(), "a");
  EXPECT_EQ(a.load_balancing_weight().value(), 350u);
  EXPECT_EQ(a.priority(), 0u);
  ASSERT_EQ(a.lb_endpoints_size(), 1);
  EXPECT_EQ(a.lb_endpoints(0).endpoint().address().socket_address().address(), "127.0.0.1");
  EXPECT_EQ(a.lb_endpoints(0).endpoint().address().socket_address().port_value(), 9000u);
  EXPECT_EQ(a.lb_endpoints(0).health_status(), envoy::config::core::v3::HEALTHY);
  const endpoint::LocalityLbEndpoints& b = cla.endpoints(1);
  EXPECT_EQ(b.locality().zone(), "");
  EXPECT_EQ(b.locality().sub_zone(), "b");
  EXPECT_EQ(b.load_balancing_weight().value(), 100u);
  EXPECT_EQ(b.lb_endpoints(0).endpoint().address().socket_address().address(), "::1");
}

TEST(XdsResourceTest, NoInstancesIsAnEmptyAssignmentNotAnError) {
  EndpointsBuilt built = EndpointsResource("nobody", {}, "zone");
  endpoint::ClusterLoadAssignment cla;
  ASSERT_TRUE(built.resource.UnpackTo(&cla));
  EXPECT_EQ(cla.cluster_name(), "nobody");
  EXPECT_EQ(cla.endpoints_size(), 0);
}

}  // namespace
}  // namespace muster::xds
