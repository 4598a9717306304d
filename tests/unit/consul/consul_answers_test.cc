// Consul catalog registrations and the answers' JSON shapes
// (server/consul/consul_codec.h): agent services, catalog services, nodes,
// health checks and health entries.
#include "server/consul/consul_codec.h"

#include <regex>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/status_matchers.h"

namespace muster::consul {
namespace {

namespace json = boost::json;
using ::muster::testing::IsOk;
using ::muster::testing::StatusIs;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

Agent TestAgent() { return Agent{"dc1", "node-a", NodeIdFor("node-a"), "10.0.0.5"}; }

// An instance as the registry holds one after a Consul registration.
Instance Web() {
  Instance in;
  in.service = "web";
  in.id = "web-1";
  in.version = "1.2.3";
  in.address = "10.0.0.7:8080";
  in.weight = 5;
  in.metadata = {{"zone", "eu"}};
  in.tags = {"primary", "v1"};
  in.ttl_seconds = 0;
  in.create_revision = 11;
  in.modify_revision = 12;
  return in;
}

absl::StatusOr<Instance> ParseCatalog(std::string_view body) {
  return ParseCatalogRegistration(body, "default", TestAgent(), Limits{});
}

// The node id looks like a UUID and depends on the node name alone.
TEST(ConsulAnswers, NodeIdIsAStableUuidOfTheName) {
  const std::string id = NodeIdFor("node-a");
  const std::regex uuid("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");
  EXPECT_TRUE(std::regex_match(id, uuid)) << id;
  EXPECT_EQ(id, NodeIdFor("node-a"));
  EXPECT_NE(id, NodeIdFor("node-b"));
  // The same on every run and build: it is a hash of our own, not std::hash.
  EXPECT_EQ(id, "e6971cc2-2078-cb53-cd53-1a1f470d5ec4");
}

// A catalog registration: Service in the AgentService shape, the
// registration's Address as the service's default, checks of the service
// with their type in Definition.
TEST(ConsulCatalog, RegistrationRegistersItsService) {
  absl::StatusOr<Instance> in = ParseCatalog(R"({
    "Node": "ext-1", "Address": "192.168.10.10",
    "Service": {"ID": "redis1", "Service": "redis", "Tags": ["primary"], "Port": 8000,
                "Meta": {"redis_version": "4.0"}},
    "Check": {"CheckID": "service:redis1", "Name": "Redis", "Status": "passing",
              "ServiceID": "redis1",
              "Definition": {"TCP": "192.168.10.10:8000", "Interval": "5s", "Timeout": "1s"}}})");
  ASSERT_THAT(in, IsOk());
  EXPECT_EQ(in->service, "redis");
  EXPECT_EQ(in->id, "redis1");
  EXPECT_EQ(in->address, "192.168.10.10:8000");
  EXPECT_EQ(in->metadata.at("redis_version"), "4.0");
  ASSERT_EQ(in->checks.size(), 1u);
  EXPECT_EQ(in->checks[0].id, "service:redis1");
  EXPECT_EQ(in->checks[0].type, CheckType::kTcp);
  EXPECT_EQ(in->checks[0].timeout, 1s);
  // The service's own Address wins; without either, the agent's.
  in = ParseCatalog(R"({"Node": "n", "Address": "192.168.10.10",
                        "service": {"service": "redis", "port": 1, "address": "127.0.0.2"}})");
  ASSERT_THAT(in, IsOk());
  EXPECT_EQ(in->address, "127.0.0.2:1");
  in = ParseCatalog(R"({"Node": "n", "Service": {"Service": "redis", "Port": 1}})");
  ASSERT_THAT(in, IsOk());
  EXPECT_EQ(in->address, "10.0.0.5:1");
}

// No Service, node checks and checks of another service are refused.
TEST(ConsulCatalog, RegistrationRefusesNodesAndNodeChecks) {
  EXPECT_THAT(ParseCatalog(R"({"Node": "n", "Address": "10.0.0.1"})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("Missing Service")));
  EXPECT_THAT(ParseCatalog(R"({"Node": "n", "Service": {"Service": "r", "Port": 1},
                               "Check": {"CheckID": "mem", "TTL": "10s"}})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("node checks")));
  EXPECT_THAT(ParseCatalog(R"({"Node": "n", "Service": {"Service": "r", "Port": 1},
                               "Checks": [{"ServiceID": "other", "TTL": "10s"}]})"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("Checks[0]: its ServiceID \"other\"")));
  EXPECT_THAT(ParseCatalog(R"({"Node": "n", "Service": {"Service": "r", "Port": 1},
                               "Check": {"ServiceID": "r", "Status": "passing"}})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("needs one of TTL")));
  EXPECT_THAT(ParseCatalog(R"({"Node": "n", "Service": {"Service": "r"}})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("Service.Port")));
  EXPECT_THAT(ParseCatalog(R"({"Node": "n", "Service": "r"})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("Service must be an object")));
}

// A deregistration names the node and, optionally, a service or a check.
TEST(ConsulCatalog, Deregistration) {
  absl::StatusOr<CatalogDeregistration> d =
      ParseCatalogDeregistration(R"({"Node": "node-a", "ServiceID": "web-1"})", Limits{});
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->node, "node-a");
  EXPECT_EQ(d->service_id, "web-1");
  EXPECT_EQ(d->check_id, "");
  d = ParseCatalogDeregistration(R"({"node": "node-a", "check_id": "service:web-1"})", Limits{});
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->check_id, "service:web-1");
  EXPECT_THAT(ParseCatalogDeregistration(R"({"ServiceID": "web-1"})", Limits{}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("Must supply node")));
  EXPECT_THAT(ParseCatalogDeregistration(R"({"Node": "n", "ServiceID": 1})", Limits{}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("ServiceID must be a string")));
  EXPECT_THAT(ParseCatalogDeregistration("nope", Limits{}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("Request decode failed")));
}

// GET /v1/agent/services values: address split, version back in Meta,
// weight as Weights.Passing, revisions as indexes.
TEST(ConsulAnswers, AgentServiceShape) {
  const json::object o = AgentServiceJson(Web(), TestAgent());
  EXPECT_EQ(o.at("ID"), "web-1");
  EXPECT_EQ(o.at("Service"), "web");
  EXPECT_EQ(o.at("Tags"), json::array({"primary", "v1"}));
  EXPECT_EQ(o.at("Meta"), json::object({{"zone", "eu"}, {"version", "1.2.3"}}));
  EXPECT_EQ(o.at("Port").to_number<int>(), 8080);
  EXPECT_EQ(o.at("Address"), "10.0.0.7");
  EXPECT_EQ(o.at("Weights"), json::object({{"Passing", 5}, {"Warning", 1}}));
  EXPECT_EQ(o.at("EnableTagOverride"), false);
  EXPECT_EQ(o.at("Datacenter"), "dc1");
  EXPECT_FALSE(o.contains("Namespace"));
  EXPECT_EQ(o.at("CreateIndex").to_number<int>(), 11);
  EXPECT_EQ(o.at("ModifyIndex").to_number<int>(), 12);
  ASSERT_TRUE(o.at("ContentHash").is_string());
  EXPECT_EQ(o.at("ContentHash").get_string().size(), 16u);
  // The hash follows the content, not the indexes.
  Instance later = Web();
  later.modify_revision = 99;
  EXPECT_EQ(AgentServiceJson(later, TestAgent()).at("ContentHash"), o.at("ContentHash"));
  later.weight = 6;
  EXPECT_NE(AgentServiceJson(later, TestAgent()).at("ContentHash"), o.at("ContentHash"));
  Instance elsewhere = Web();
  elsewhere.ns = "team-a";
  elsewhere.address = "[fe80::1]:9000";
  const json::object e = AgentServiceJson(elsewhere, TestAgent());
  EXPECT_EQ(e.at("Namespace"), "team-a");
  EXPECT_EQ(e.at("Address"), "fe80::1");
  EXPECT_EQ(e.at("Port").to_number<int>(), 9000);
}

// What AgentServiceJson answers registers the same instance again.
TEST(ConsulAnswers, AgentServiceParsesBackAsTheSameInstance) {
  Instance in = Web();
  in.address = "[::1]:80";
  absl::StatusOr<Instance> back = ParseServiceDefinition(
      json::serialize(AgentServiceJson(in, TestAgent())), "default", TestAgent(), Limits{});
  ASSERT_THAT(back, IsOk());
  EXPECT_TRUE(back->SameSpec(in)) << json::serialize(AgentServiceJson(*back, TestAgent()));
}

// GET /v1/catalog/service/{name} elements: the node's fields, then the
// service's with a Service prefix.
TEST(ConsulAnswers, CatalogServiceShape) {
  Instance in = Web();
  in.address = "[2001:db8::7]:8080";
  const json::object o = CatalogServiceJson(in, TestAgent());
  EXPECT_EQ(o.at("ID"), json::value(NodeIdFor("node-a")));
  EXPECT_EQ(o.at("Node"), "node-a");
  EXPECT_EQ(o.at("Address"), "10.0.0.5");
  EXPECT_EQ(o.at("Datacenter"), "dc1");
  EXPECT_TRUE(o.at("TaggedAddresses").is_object());
  EXPECT_TRUE(o.at("NodeMeta").is_object());
  EXPECT_EQ(o.at("ServiceID"), "web-1");
  EXPECT_EQ(o.at("ServiceName"), "web");
  EXPECT_EQ(o.at("ServiceTags"), json::array({"primary", "v1"}));
  EXPECT_EQ(o.at("ServiceAddress"), "2001:db8::7");
  EXPECT_EQ(o.at("ServicePort").to_number<int>(), 8080);
  EXPECT_EQ(o.at("ServiceMeta").at("version"), "1.2.3");
  EXPECT_EQ(o.at("ServiceWeights").at("Passing").to_number<int>(), 5);
  EXPECT_EQ(o.at("ServiceEnableTagOverride"), false);
  EXPECT_EQ(o.at("CreateIndex").to_number<int>(), 11);
  EXPECT_EQ(o.at("ModifyIndex").to_number<int>(), 12);
}

// The checks of an instance as HealthCheck objects: active checks with
// their interval and timeout, reported and lease checks as "ttl", and the
// maintenance check while the instance is disabled.
TEST(ConsulAnswers, ServiceChecksShape) {
  Instance in = Web();
  Check http;
  http.id = "service:web-1:1";
  http.type = CheckType::kHttp;
  http.target = "http://10.0.0.7:8080/health";
  http.interval = 15s;
  http.timeout = 2500ms;
  http.status = Health::kWarning;
  http.output = "HTTP GET: 429";
  Check reported;
  reported.id = "service:web-1:2";
  reported.ttl = 30s;
  reported.status = Health::kPassing;
  Check lease;
  lease.id = "lease";
  lease.status = Health::kCritical;  // a lease check answers passing whatever it holds
  lease.output = "renewed";
  in.checks = {http, reported, lease};
  std::vector<json::object> checks = ServiceChecksJson(in, TestAgent());
  ASSERT_EQ(checks.size(), 3u);
  const json::object& h = checks[0];
  EXPECT_EQ(h.at("Node"), "node-a");
  EXPECT_EQ(h.at("CheckID"), "service:web-1:1");
  EXPECT_EQ(h.at("Name"), "Service 'web' check");
  EXPECT_EQ(h.at("Status"), "warning");
  EXPECT_EQ(h.at("Notes"), "");
  EXPECT_EQ(h.at("Output"), "HTTP GET: 429");
  EXPECT_EQ(h.at("ServiceID"), "web-1");
  EXPECT_EQ(h.at("ServiceName"), "web");
  EXPECT_EQ(h.at("ServiceTags"), json::array({"primary", "v1"}));
  EXPECT_EQ(h.at("Type"), "http");
  EXPECT_EQ(h.at("Interval"), "15s");
  EXPECT_EQ(h.at("Timeout"), "2.5s");
  EXPECT_TRUE(h.at("Definition").is_object());
  EXPECT_EQ(h.at("CreateIndex").to_number<int>(), 11);
  EXPECT_EQ(h.at("ModifyIndex").to_number<int>(), 12);
  EXPECT_EQ(checks[1].at("Type"), "ttl");
  EXPECT_EQ(checks[1].at("Status"), "passing");
  EXPECT_EQ(checks[1].at("Interval"), "");
  EXPECT_EQ(checks[1].at("Timeout"), "");
  EXPECT_EQ(checks[2].at("Type"), "ttl");
  EXPECT_EQ(checks[2].at("Status"), "passing");
  EXPECT_EQ(checks[2].at("Output"), "renewed");

  in.status = InstanceStatus::kDisabled;
  checks = ServiceChecksJson(in, TestAgent());
  ASSERT_EQ(checks.size(), 4u);
  const json::object& m = checks[3];
  EXPECT_EQ(m.at("CheckID"), "_service_maintenance:web-1");
  EXPECT_EQ(m.at("CheckID"), json::value(MaintenanceCheckId("web-1")));
  EXPECT_EQ(m.at("Name"), "Service Maintenance Mode");
  EXPECT_EQ(m.at("Status"), "critical");
  EXPECT_EQ(m.at("Notes"), "Maintenance mode is enabled for this service");
  EXPECT_EQ(m.at("ServiceID"), "web-1");
  EXPECT_EQ(m.at("ServiceName"), "web");
}

// The node and its serfHealth check, always passing.
TEST(ConsulAnswers, NodeAndNodeCheckShape) {
  const json::object node = NodeJson(TestAgent());
  EXPECT_EQ(node.at("ID"), json::value(NodeIdFor("node-a")));
  EXPECT_EQ(node.at("Node"), "node-a");
  EXPECT_EQ(node.at("Address"), "10.0.0.5");
  EXPECT_EQ(node.at("Datacenter"), "dc1");
  EXPECT_EQ(node.at("TaggedAddresses").at("lan"), "10.0.0.5");
  EXPECT_TRUE(node.at("Meta").is_object());
  EXPECT_TRUE(node.contains("CreateIndex"));
  EXPECT_TRUE(node.contains("ModifyIndex"));
  const json::object serf = NodeCheckJson(TestAgent());
  EXPECT_EQ(serf.at("Node"), "node-a");
  EXPECT_EQ(serf.at("CheckID"), "serfHealth");
  EXPECT_EQ(serf.at("Name"), "Serf Health Status");
  EXPECT_EQ(serf.at("Status"), "passing");
  EXPECT_EQ(serf.at("Output"), "Agent alive and reachable");
  EXPECT_EQ(serf.at("ServiceID"), "");
  EXPECT_EQ(serf.at("ServiceName"), "");
}

// Consul's health of an instance: the worst check (a lease check counts as
// passing), critical while disabled.
TEST(ConsulAnswers, HealthIsTheWorstCheckOrCriticalWhenDisabled) {
  Instance in = Web();
  EXPECT_EQ(ConsulHealth(in), Health::kPassing);
  Check lease;
  lease.id = "lease";
  lease.status = Health::kCritical;
  in.checks = {lease};
  EXPECT_EQ(ConsulHealth(in), Health::kPassing);
  Check warn;
  warn.id = "w";
  warn.type = CheckType::kTcp;
  warn.status = Health::kWarning;
  in.checks.push_back(warn);
  EXPECT_EQ(ConsulHealth(in), Health::kWarning);
  in.status = InstanceStatus::kDisabled;
  EXPECT_EQ(ConsulHealth(in), Health::kCritical);
  EXPECT_EQ(ParseCheckStatus("warning"), Health::kWarning);
  EXPECT_EQ(ParseCheckStatus("any"), std::nullopt);
}

// A health entry: the node, the service without ContentHash, and the node
// check before the service's checks.
TEST(ConsulAnswers, ServiceEntryShape) {
  Instance in = Web();
  Check tcp;
  tcp.id = "service:web-1";
  tcp.type = CheckType::kTcp;
  tcp.status = Health::kPassing;
  in.checks = {tcp};
  const json::object entry = ServiceEntryJson(in, TestAgent());
  EXPECT_EQ(entry.at("Node"), NodeJson(TestAgent()));
  json::object service = AgentServiceJson(in, TestAgent());
  service.erase("ContentHash");
  EXPECT_EQ(entry.at("Service"), service);
  const json::array& checks = entry.at("Checks").as_array();
  ASSERT_EQ(checks.size(), 2u);
  EXPECT_EQ(checks[0].at("CheckID"), "serfHealth");
  EXPECT_EQ(checks[1].at("CheckID"), "service:web-1");
  EXPECT_EQ(checks[1].at("Type"), "tcp");
}

}  // namespace
}  // namespace muster::consul
