// Consul service definitions (server/consul/consul_codec.h): the instance
// PUT /v1/agent/service/register registers, its checks, and what it refuses.
#include "server/consul/consul_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/strings.h"
#include "support/status_matchers.h"

namespace muster::consul {
namespace {

using ::muster::testing::IsOk;
using ::muster::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;
using namespace std::chrono_literals;

Agent TestAgent() { return Agent{"dc1", "node-a", NodeIdFor("node-a"), "10.0.0.5"}; }

absl::StatusOr<Instance> Parse(std::string_view body, const Limits& limits = Limits{}) {
  return ParseServiceDefinition(body, "default", TestAgent(), limits);
}

// The one check of a definition with a service and this check object.
absl::StatusOr<Check> ParseOneCheck(std::string_view check) {
  absl::StatusOr<Instance> in =
      Parse(StrCat(R"({"Name": "web", "Port": 80, "Check": )", check, "}"));
  if (!in.ok()) return in.status();
  if (in->checks.size() != 1) return absl::InternalError("not one check");
  return in->checks.front();
}

// The error a definition is refused with, as InvalidArgument carrying `text`.
void ExpectRefused(std::string_view body, std::string_view text) {
  EXPECT_THAT(Parse(body), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(text)))
      << body;
}

// Only Name and Port given: ID is the name, the address the agent's, the
// weight 100, no lease, enabled, in the request's namespace.
TEST(ConsulDefinition, MinimalDefinitionTakesDefaults) {
  absl::StatusOr<Instance> in = Parse(R"({"Name": "web", "Port": 8080})");
  ASSERT_THAT(in, IsOk());
  EXPECT_EQ(in->ns, "default");
  EXPECT_EQ(in->service, "web");
  EXPECT_EQ(in->id, "web");
  EXPECT_EQ(in->address, "10.0.0.5:8080");
  EXPECT_EQ(in->weight, 100u);
  EXPECT_EQ(in->ttl_seconds, 0u);
  EXPECT_EQ(in->status, InstanceStatus::kEnabled);
  EXPECT_EQ(in->version, "");
  EXPECT_TRUE(in->tags.empty());
  EXPECT_TRUE(in->metadata.empty());
  EXPECT_TRUE(in->checks.empty());
  absl::StatusOr<Instance> other =
      ParseServiceDefinition(R"({"Name": "web", "Port": 1})", "team-a", TestAgent(), Limits{});
  ASSERT_THAT(other, IsOk());
  EXPECT_EQ(other->ns, "team-a");
}

// Field names match whatever their case, with or without underscores.
TEST(ConsulDefinition, FieldNamesMatchInAnyCaseAndSnakeCase) {
  for (std::string_view body : {R"({"Name": "web", "Port": 80, "ID": "web-1"})",
                                R"({"name": "web", "port": 80, "id": "web-1"})",
                                R"({"NAME": "web", "PORT": 80, "Id": "web-1"})"}) {
    absl::StatusOr<Instance> in = Parse(body);
    ASSERT_THAT(in, IsOk()) << body;
    EXPECT_EQ(in->service, "web");
    EXPECT_EQ(in->id, "web-1");
    EXPECT_EQ(in->address, "10.0.0.5:80");
  }
  absl::StatusOr<Check> c = ParseOneCheck(
      R"({"check_id": "c", "http": "http://127.0.0.1/h", "interval": "5s",
          "deregister_critical_service_after": "1m", "tls_skip_verify": true,
          "success_before_passing": 2, "failures_before_critical": 4})");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->id, "c");
  EXPECT_EQ(c->deregister_critical_after, 1min);
  EXPECT_TRUE(c->tls_skip_verify);
  EXPECT_EQ(c->rise, 2u);
  EXPECT_EQ(c->fall, 4u);
  c = ParseOneCheck(R"({"script_args": ["/bin/check", "-q"], "interval": "5s"})");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->target, "/bin/check");
}

// Fields Consul has and Muster does not need, and fields nobody has, are
// ignored; null reads as absent.
TEST(ConsulDefinition, UnknownAndNullFieldsAreIgnored) {
  absl::StatusOr<Instance> in = Parse(R"({
    "Name": "web", "Port": 80, "Kind": "", "EnableTagOverride": true,
    "TaggedAddresses": {"lan": {"Address": "10.1.1.1", "Port": 80}},
    "Connect": {}, "Proxy": null, "SomethingNew": [1, {"a": 2}],
    "ID": null, "Tags": null, "Meta": null, "Check": null, "Checks": null})");
  ASSERT_THAT(in, IsOk());
  EXPECT_EQ(in->id, "web");
  EXPECT_TRUE(in->tags.empty());
  EXPECT_TRUE(in->checks.empty());
  // What a Go client sends for fields it leaves unset: zero values. An empty
  // Check is no check, as in Consul.
  in = Parse(R"({"Name": "web", "Port": 80, "Check": {},
                 "Connect": {"Native": false, "SidecarService": null},
                 "Proxy": {"DestinationServiceName": "", "LocalServicePort": 0, "Upstreams": []}})");
  ASSERT_THAT(in, IsOk());
  EXPECT_TRUE(in->checks.empty());
}

// Tags keep their order; a tag given twice is kept once, as Consul does not
// refuse it.
TEST(ConsulDefinition, TagsKeepOrderAndDropDuplicates) {
  absl::StatusOr<Instance> in =
      Parse(R"({"Name": "web", "Port": 80, "Tags": ["b", "a", "b", "c", "a"]})");
  ASSERT_THAT(in, IsOk());
  EXPECT_THAT(in->tags, ElementsAre("b", "a", "c"));
  std::string many = "[";
  for (int i = 0; i < 1000; ++i) StrAppend(&many, i == 0 ? "" : ",", "\"t", i, "\"");
  ExpectRefused(StrCat(R"({"Name": "web", "Port": 80, "Tags": )", many, "]}"), "more than 64 tags");
}

// Meta "version" is the instance's version when it is a valid name, and then
// leaves the metadata; otherwise it stays metadata.
TEST(ConsulDefinition, MetaVersionBecomesTheVersion) {
  absl::StatusOr<Instance> in =
      Parse(R"({"Name": "web", "Port": 80, "Meta": {"version": "1.2.3", "zone": "eu"}})");
  ASSERT_THAT(in, IsOk());
  EXPECT_EQ(in->version, "1.2.3");
  EXPECT_THAT(in->metadata, UnorderedElementsAre(Pair("zone", "eu")));
  in = Parse(R"({"Name": "web", "Port": 80, "Meta": {"version": "1.2 beta"}})");
  ASSERT_THAT(in, IsOk());
  EXPECT_EQ(in->version, "");
  EXPECT_THAT(in->metadata, UnorderedElementsAre(Pair("version", "1.2 beta")));
  ExpectRefused(R"({"Name": "web", "Port": 80, "Meta": {"zone": 1}})", "Meta must be");
}

// Weights.Passing is the weight, within the limits; Warning is ignored.
TEST(ConsulDefinition, WeightsPassingIsTheWeight) {
  absl::StatusOr<Instance> in =
      Parse(R"({"Name": "web", "Port": 80, "Weights": {"Passing": 7, "Warning": 3}})");
  ASSERT_THAT(in, IsOk());
  EXPECT_EQ(in->weight, 7u);
  ExpectRefused(R"({"Name": "web", "Port": 80, "Weights": {"Passing": 0}})",
                "Weights.Passing must be 1..10000");
  ExpectRefused(R"({"Name": "web", "Port": 80, "Weights": {"Passing": 10001}})",
                "Weights.Passing must be 1..10000");
  ExpectRefused(R"({"Name": "web", "Port": 80, "Weights": {"Warning": 1}})",
                "Weights.Passing must be 1..10000");
}

// Address is a host: an IPv6 literal gets brackets, a host:port is refused,
// and without one the agent's address is used.
TEST(ConsulDefinition, AddressIsAHostAndIpv6GetsBrackets) {
  absl::StatusOr<Instance> in = Parse(R"({"Name": "web", "Port": 80, "Address": "::1"})");
  ASSERT_THAT(in, IsOk());
  EXPECT_EQ(in->address, "[::1]:80");
  in = Parse(R"({"Name": "web", "Port": 80, "Address": "[fe80::1]"})");
  ASSERT_THAT(in, IsOk());
  EXPECT_EQ(in->address, "[fe80::1]:80");
  in = Parse(R"({"Name": "web", "Port": 80, "Address": "db.internal"})");
  ASSERT_THAT(in, IsOk());
  EXPECT_EQ(in->address, "db.internal:80");
  in = Parse(R"({"Name": "web", "Port": 80, "Address": ""})");
  ASSERT_THAT(in, IsOk());
  EXPECT_EQ(in->address, "10.0.0.5:80");
  ExpectRefused(R"({"Name": "web", "Port": 80, "Address": "10.0.0.1:80"})", "without a port");
  ExpectRefused(R"({"Name": "web", "Port": 80, "Address": "bad host"})", "bad host character");
  Agent no_address = TestAgent();
  no_address.address = "";
  EXPECT_THAT(
      ParseServiceDefinition(R"({"Name": "web", "Port": 80})", "default", no_address, Limits{}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("Missing service address")));
}

// A Namespace in the body must be the request's.
TEST(ConsulDefinition, NamespaceMustBeTheRequests) {
  EXPECT_THAT(Parse(R"({"Name": "web", "Port": 80, "Namespace": "default"})"), IsOk());
  ExpectRefused(R"({"Name": "web", "Port": 80, "Namespace": "team-a"})",
                "is not the namespace of the request");
}

// What Consul refuses, and what Muster cannot hold, is InvalidArgument
// naming the field.
TEST(ConsulDefinition, RefusesWhatItCannotHold) {
  ExpectRefused(R"({"Port": 80})", "Missing service name");
  ExpectRefused(R"({"Name": "", "Port": 80})", "Missing service name");
  ExpectRefused(R"({"Name": "web"})", "Missing service port");
  ExpectRefused(R"({"Name": "web", "Port": 0})", "Port must be 1..65535");
  ExpectRefused(R"({"Name": "web", "Port": 65536})", "Port must be 1..65535");
  ExpectRefused(R"({"Name": "web", "Port": 1e30})", "Port must be 1..65535");
  ExpectRefused(R"({"Name": "web", "Port": "80"})", "Port must be an integer");
  ExpectRefused(R"({"Name": "web", "Port": 80.5})", "Port must be an integer");
  ExpectRefused(R"({"Name": "web", "Port": 80, "Kind": "connect-proxy"})",
                "Kind \"connect-proxy\" is not supported");
  ExpectRefused(R"({"Name": "web", "Port": 80, "Connect": {"Native": true}})",
                "Connect is not supported");
  ExpectRefused(R"({"Name": "web", "Port": 80, "Proxy": {"DestinationServiceName": "db"}})",
                "Proxy is not supported");
  ExpectRefused(R"({"Name": "web app", "Port": 80})", "Name may contain only");
  ExpectRefused(R"({"Name": "web", "ID": "web/1", "Port": 80})", "ID may contain only");
  ExpectRefused(R"({"Name": "web", "Port": 80, "Tags": "a"})", "Tags must be an array");
  ExpectRefused(R"({"Name": 7, "Port": 80})", "Name must be a string");
  ExpectRefused(R"({"Name": "web", "Port": 80,)", "Request decode failed");
  ExpectRefused(R"(["web"])", "must be a JSON object");
  ExpectRefused("", "Request decode failed");
  Limits small;
  small.max_body_bytes = 16;
  EXPECT_THAT(Parse(R"({"Name": "web", "Port": 80})", small),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("over 16 bytes")));
}

// A TTL check is a reported ttl check: it starts in its Status (critical
// when none is given).
TEST(ConsulCheck, TtlCheckIsAReportedCheck) {
  absl::StatusOr<Check> c = ParseOneCheck(R"({"TTL": "30s", "Status": "passing"})");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->type, CheckType::kTtl);
  EXPECT_TRUE(c->IsReported());
  EXPECT_EQ(c->ttl, 30s);
  EXPECT_EQ(c->status, Health::kPassing);
  EXPECT_EQ(c->id, "service:web");
  c = ParseOneCheck(R"({"TTL": "10s", "DeregisterCriticalServiceAfter": "90m"})");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->status, Health::kCritical);
  EXPECT_EQ(c->deregister_critical_after, 90min);
}

// An HTTP check: URL, Method (GET by default), Header values joined with
// ", ", Timeout 10s by default, rise and fall 1 when Consul's thresholds
// are not given.
TEST(ConsulCheck, HttpCheckMapsEveryField) {
  absl::StatusOr<Check> c = ParseOneCheck(R"({
    "HTTP": "https://10.0.0.5:8443/health", "Interval": "15s", "TLSSkipVerify": true,
    "Header": {"Accept": ["text/plain", "application/json"], "X-Empty": []}})");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->type, CheckType::kHttp);
  EXPECT_EQ(c->target, "https://10.0.0.5:8443/health");
  EXPECT_EQ(c->method, "GET");
  EXPECT_THAT(c->headers, UnorderedElementsAre(Pair("Accept", "text/plain, application/json")));
  EXPECT_TRUE(c->tls_skip_verify);
  EXPECT_EQ(c->interval, 15s);
  EXPECT_EQ(c->timeout, 10s);
  EXPECT_EQ(c->rise, 1u);
  EXPECT_EQ(c->fall, 1u);
  c = ParseOneCheck(R"({"HTTP": "http://h/x", "Method": "HEAD", "Interval": "5s",
                        "Timeout": "2s", "SuccessBeforePassing": 3, "FailuresBeforeCritical": 0,
                        "FailuresBeforeWarning": 1})");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->method, "HEAD");
  EXPECT_EQ(c->timeout, 2s);
  EXPECT_EQ(c->rise, 3u);
  EXPECT_EQ(c->fall, 1u);
  EXPECT_THAT(ParseOneCheck(R"({"HTTP": "http://h/", "Interval": "5s", "Header": {"A": "b"}})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("Header must be")));
}

// TCP, GRPC (with or without a service after '/') and Args checks.
TEST(ConsulCheck, TcpGrpcAndScriptChecks) {
  absl::StatusOr<Check> c = ParseOneCheck(R"({"TCP": "10.0.0.5:5432", "Interval": "5s"})");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->type, CheckType::kTcp);
  EXPECT_EQ(c->target, "10.0.0.5:5432");
  c = ParseOneCheck(R"({"GRPC": "10.0.0.5:9090/orders.v1.Orders", "Interval": "5s"})");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->type, CheckType::kGrpc);
  EXPECT_EQ(c->target, "10.0.0.5:9090");
  EXPECT_EQ(c->grpc_service, "orders.v1.Orders");
  c = ParseOneCheck(R"({"GRPC": "10.0.0.5:9090", "GRPCUseTLS": false, "Interval": "5s"})");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->grpc_service, "");
  c = ParseOneCheck(R"({"Args": ["/usr/bin/check", "--port", "80"], "Interval": "1m"})");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->type, CheckType::kScript);
  EXPECT_EQ(c->target, "/usr/bin/check");
  EXPECT_THAT(c->args, ElementsAre("--port", "80"));
  EXPECT_EQ(c->interval, 1min);
}

// Durations are Go strings or integers of nanoseconds.
TEST(ConsulCheck, DurationsAreStringsOrNanoseconds) {
  absl::StatusOr<Check> c = ParseOneCheck(
      R"({"TCP": "h:1", "Interval": 10000000000, "Timeout": "1m30s",
          "DeregisterCriticalServiceAfter": 1.5e9})");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->interval, 10s);
  EXPECT_EQ(c->timeout, 90s);
  EXPECT_EQ(c->deregister_critical_after, 1500ms);
  EXPECT_THAT(ParseOneCheck(R"({"TCP": "h:1", "Interval": -5})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("must not be negative")));
  EXPECT_THAT(ParseOneCheck(R"({"TCP": "h:1", "Interval": "soon"})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bad duration")));
  EXPECT_THAT(ParseOneCheck(R"({"TCP": "h:1", "Interval": true})"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("Interval must be a duration")));
}

// Checks without an id get Consul's: "service:{id}" for one check,
// "service:{id}:{n}" counting Check first, then Checks.
TEST(ConsulCheck, DefaultCheckIdsCountCheckThenChecks) {
  EXPECT_EQ(DefaultCheckId("web-1", 0, 1), "service:web-1");
  EXPECT_EQ(DefaultCheckId("web-1", 1, 3), "service:web-1:2");
  absl::StatusOr<Instance> in = Parse(R"({
    "Name": "web", "ID": "web-1", "Port": 80,
    "Check": {"TTL": "10s"},
    "Checks": [{"TCP": "h:1", "Interval": "5s"}, {"CheckID": "mine", "TTL": "5s"},
               {"ID": "alias", "TTL": "5s"}]})");
  ASSERT_THAT(in, IsOk());
  ASSERT_EQ(in->checks.size(), 4u);
  EXPECT_EQ(in->checks[0].id, "service:web-1:1");
  EXPECT_EQ(in->checks[1].id, "service:web-1:2");
  EXPECT_EQ(in->checks[2].id, "mine");
  EXPECT_EQ(in->checks[3].id, "alias");
}

// Checks Muster cannot run, and checks Consul itself refuses.
TEST(ConsulCheck, RefusesChecksItCannotRun) {
  auto refused = [](std::string_view check, std::string_view text) {
    EXPECT_THAT(ParseOneCheck(check), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(text)))
        << check;
  };
  refused(R"({"Name": "nothing"})", "needs one of TTL, HTTP, TCP, GRPC or Args");
  refused(R"({"TTL": "0s"})", "needs one of");
  refused(R"({"HTTP": "http://h/", "TCP": "h:1", "Interval": "5s"})", "only one of");
  refused(R"({"H2PING": "h:1", "Interval": "5s"})", "H2PING checks are not supported");
  refused(R"({"UDP": "h:1", "Interval": "5s"})", "UDP checks are not supported");
  refused(R"({"DockerContainerID": "abc", "Args": ["x"], "Interval": "5s"})",
          "DockerContainerID checks are not supported");
  refused(R"({"AliasService": "db"})", "AliasService checks are not supported");
  refused(R"({"OSService": "sshd", "Interval": "5s"})", "OSService checks are not supported");
  refused(R"({"Script": "/bin/check", "Interval": "5s"})",
          "Script checks are not supported by this registry (Args checks are)");
  refused(R"({"GRPC": "h:1", "GRPCUseTLS": true, "Interval": "5s"})", "GRPCUseTLS");
  refused(R"({"TTL": "10s", "Status": "ok"})", "Status for checks must be");
  refused(R"({"HTTP": "http://h/"})", "Interval must be > 0 for Script, HTTP");
  refused(R"({"TCP": "h:1", "Interval": "0s"})", "Interval must be > 0");
  refused(R"({"TTL": "10s", "Interval": "5s"})", "Interval and TTL cannot both be specified");
  refused(R"({"HTTP": "http://h/", "Body": "{}", "Interval": "5s"})", "Body");
  refused(R"({"TCP": "h:1", "Interval": "5s", "SuccessBeforePassing": -1})",
          "SuccessBeforePassing must be 0..100");
  refused(R"({"TCP": "h:1", "Interval": "5s", "TLSSkipVerify": "yes"})",
          "TLSSkipVerify must be true or false");
  // What Muster's own validation refuses reads "Invalid service".
  refused(R"({"TCP": "h:1", "Interval": "1ms"})", "Invalid service: check \"service:web\"");
  EXPECT_THAT(Parse(R"({"Name": "web", "Port": 80, "Checks": [1]})"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("Checks[0] must be an object")));
}

}  // namespace
}  // namespace muster::consul
