// The Consul HTTP API of musterd over loopback, as plain HTTP (docs/consul.md):
// every endpoint, Consul's conventions (field names in any case, plain-text
// errors, X-Consul-Index and blocking queries), TTL checks that start
// critical, pass and lapse, maintenance, and the same instances seen through
// the native API. tests/consul-client/ drives the same with Node's consul
// package.
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/strings.h"
#include "integration/musterd_fixture.h"
#include "support/blocking_query.h"
#include "support/check_targets.h"

namespace muster::testing {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

std::string AsciiLowerForTest(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

class ConsulApiTest : public MusterdTest {
 protected:
  wire::HttpResponse Put(const std::string& target, const json::value& body) {
    return Must(client().Put(target, json::serialize(body)));
  }
  wire::HttpResponse Get(const std::string& target) { return Must(client().Get(target)); }

  // Registers service `name` instance `id` on 127.0.0.1:`port` through the
  // agent, with `extra` fields in the definition.
  void AgentRegister(const std::string& name, const std::string& id, int port,
                     json::object extra = {}) {
    extra["Name"] = name;
    extra["ID"] = id;
    extra["Address"] = "127.0.0.1";
    extra["Port"] = port;
    wire::HttpResponse r = Put("/v1/agent/service/register", extra);
    ASSERT_EQ(r.status, 200) << r.body;
  }

  // The JSON of a 200 read, with its X-Consul-Index.
  json::value Read(const std::string& target, uint64_t* index = nullptr) {
    wire::HttpResponse r = Get(target);
    EXPECT_EQ(r.status, 200) << target << ": " << r.body;
    EXPECT_THAT(r.Header("Content-Type").value_or(""), HasSubstr("application/json"));
    const std::string header = r.Header("X-Consul-Index").value_or("");
    EXPECT_FALSE(header.empty()) << target << " has no X-Consul-Index";
    if (index != nullptr) *index = header.empty() ? 0 : std::stoull(header);
    return JsonOf(r);
  }

  // The Status of check `check_id` in GET /v1/agent/checks ("" when absent).
  std::string CheckStatus(const std::string& check_id, std::string* output = nullptr) {
    json::value checks = Read("/v1/agent/checks");
    if (!checks.is_object() || !checks.as_object().contains(check_id)) return "";
    const json::object& c = checks.as_object().at(check_id).as_object();
    if (output != nullptr) *output = std::string(c.at("Output").as_string());
    return std::string(c.at("Status").as_string());
  }

  // The service IDs in GET /v1/health/service/NAME[?QUERY].
  std::vector<std::string> HealthIds(const std::string& name, const std::string& query = "") {
    json::value entries = Read("/v1/health/service/" + name + (query.empty() ? "" : "?" + query));
    std::vector<std::string> ids;
    if (!entries.is_array()) return ids;
    for (const auto& e : entries.as_array()) {
      ids.emplace_back(e.at("Service").at("ID").as_string());
    }
    return ids;
  }

  // Polls until CheckStatus(check_id) is `want`, for up to `timeout`.
  bool WaitForCheck(const std::string& check_id, const std::string& want, milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (CheckStatus(check_id) == want) return true;
      std::this_thread::sleep_for(milliseconds(50));
    }
    return CheckStatus(check_id) == want;
  }
};

// A service registered through the agent is the instance the native API
// lists, and each Consul view shows it with its fields.
TEST_F(ConsulApiTest, AgentRegistrationIsTheNativeInstance) {
  AgentRegister("web", "web-1", 8080,
                {{"Tags", json::array{"primary", "v1"}},
                 {"Meta", json::object{{"version", "1.4.2"}, {"zone", "eu-1"}}},
                 {"Weights", json::object{{"Passing", 7}, {"Warning", 1}}}});

  ListResult native = List("web");
  ASSERT_EQ(native.instances.size(), 1u);
  const Instance& in = native.instances[0];
  EXPECT_EQ(in.id, "web-1");
  EXPECT_EQ(in.address, "127.0.0.1:8080");
  EXPECT_EQ(in.version, "1.4.2");
  EXPECT_EQ(in.weight, 7u);
  EXPECT_EQ(in.metadata.at("zone"), "eu-1");
  EXPECT_THAT(in.tags, ::testing::ElementsAre("primary", "v1"));
  EXPECT_EQ(in.ttl_seconds, 0u);  // no lease: nothing but a deregistration removes it

  uint64_t index = 0;
  json::value services = Read("/v1/agent/services", &index);
  EXPECT_GT(index, 0u);
  ASSERT_TRUE(services.as_object().contains("web-1")) << services;
  const json::object& s = services.at("web-1").as_object();
  EXPECT_EQ(s.at("Service").as_string(), "web");
  EXPECT_EQ(s.at("Port").as_int64(), 8080);
  EXPECT_EQ(s.at("Address").as_string(), "127.0.0.1");
  EXPECT_EQ(s.at("Meta").at("version").as_string(), "1.4.2");
  EXPECT_EQ(s.at("Weights").at("Passing").as_int64(), 7);

  json::value one = Read("/v1/agent/service/web-1");
  EXPECT_EQ(one.at("ID").as_string(), "web-1");

  json::value catalog = Read("/v1/catalog/service/web");
  ASSERT_EQ(catalog.as_array().size(), 1u) << catalog;
  const json::object& c = catalog.as_array()[0].as_object();
  EXPECT_EQ(c.at("ServiceID").as_string(), "web-1");
  EXPECT_EQ(c.at("ServiceAddress").as_string(), "127.0.0.1");
  EXPECT_EQ(c.at("ServicePort").as_int64(), 8080);
  EXPECT_EQ(c.at("Datacenter").as_string(), "dc1");
}

// The other way round: a native registration is a Consul service, with the
// node's serfHealth check beside its own.
TEST_F(ConsulApiTest, NativeInstanceIsSeenThroughConsul) {
  ASSERT_EQ(Register("orders", "orders-1",
                     RegisterBody("127.0.0.1:9001", {{"tags", json::array{"blue"}}}))
                .status,
            201);
  json::value entries = Read("/v1/health/service/orders");
  ASSERT_EQ(entries.as_array().size(), 1u) << entries;
  const json::object& e = entries.as_array()[0].as_object();
  EXPECT_EQ(e.at("Service").at("ID").as_string(), "orders-1");
  EXPECT_EQ(e.at("Service").at("Port").as_int64(), 9001);
  EXPECT_EQ(e.at("Service").at("Tags").as_array().size(), 1u);
  bool serf = false;
  for (const auto& check : e.at("Checks").as_array()) {
    serf |= check.at("CheckID").as_string() == "serfHealth";
  }
  EXPECT_TRUE(serf) << entries;
  EXPECT_THAT(HealthIds("orders", "passing"), ::testing::ElementsAre("orders-1"));
}

// Clients send field names in any case; unknown fields are ignored.
TEST_F(ConsulApiTest, FieldNamesMatchInAnyCaseAndUnknownOnesAreIgnored) {
  wire::HttpResponse r = Put("/v1/agent/service/register",
                             json::object{{"name", "lower"},
                                          {"id", "lower-1"},
                                          {"port", 7001},
                                          {"enable_tag_override", true},
                                          {"SomethingNew", json::object{{"x", 1}}},
                                          {"check", json::object{{"ttl", "30s"}}}});
  ASSERT_EQ(r.status, 200) << r.body;
  ListResult native = List("lower");
  ASSERT_EQ(native.instances.size(), 1u);
  // No Address: the agent's.
  EXPECT_EQ(native.instances[0].address, "127.0.0.1:7001");
  EXPECT_EQ(CheckStatus("service:lower-1"), "critical");
}

// Consul's TTL check: critical until its first pass, passing after one (the
// note is its output), critical again ("TTL expired") once no pass came for
// the TTL, and the instance stays registered through it.
TEST_F(ConsulApiTest, TtlCheckStartsCriticalPassesAndLapses) {
  AgentRegister("ttl", "ttl-1", 7002, {{"Check", json::object{{"TTL", "2s"}}}});
  EXPECT_EQ(CheckStatus("service:ttl-1"), "critical");
  EXPECT_TRUE(HealthIds("ttl", "passing").empty());

  wire::HttpResponse r = Must(client().Put("/v1/agent/check/pass/service:ttl-1?note=all%20good", ""));
  ASSERT_EQ(r.status, 200) << r.body;
  std::string output;
  EXPECT_EQ(CheckStatus("service:ttl-1", &output), "passing");
  EXPECT_EQ(output, "all good");
  EXPECT_THAT(HealthIds("ttl", "passing"), ::testing::ElementsAre("ttl-1"));

  ASSERT_TRUE(WaitForCheck("service:ttl-1", "critical", milliseconds(15000)));
  CheckStatus("service:ttl-1", &output);
  EXPECT_EQ(output, "TTL expired");
  EXPECT_THAT(HealthIds("ttl"), ::testing::ElementsAre("ttl-1"));  // still registered
  EXPECT_TRUE(HealthIds("ttl", "passing").empty());
}

// DeregisterCriticalServiceAfter removes a service whose TTL check stayed
// critical that long; without it the service stays (the test above).
TEST_F(ConsulApiTest, DeregisterCriticalServiceAfterRemovesALapsedService) {
  AgentRegister("reap", "reap-1", 7009,
                {{"Check", json::object{{"TTL", "1s"}, {"DeregisterCriticalServiceAfter", "1s"}}}});
  ASSERT_EQ(List("reap").ids(), std::vector<std::string>{"reap-1"});
  const auto deadline = std::chrono::steady_clock::now() + milliseconds(15000);
  while (!List("reap").instances.empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_TRUE(List("reap").instances.empty());
  EXPECT_FALSE(Read("/v1/agent/services").as_object().contains("reap-1"));
}

// update takes Status and Output in the body; warn and fail set their
// states; the id may come percent-encoded.
TEST_F(ConsulApiTest, CheckUpdateWarnAndFail) {
  AgentRegister("upd", "upd-1", 7003, {{"Check", json::object{{"CheckID", "app"}, {"TTL", "60s"}}}});
  wire::HttpResponse r = Put("/v1/agent/check/update/app",
                             json::object{{"status", "warning"}, {"output", "slow disk"}});
  ASSERT_EQ(r.status, 200) << r.body;
  std::string output;
  EXPECT_EQ(CheckStatus("app", &output), "warning");
  EXPECT_EQ(output, "slow disk");
  // A warning instance is not "passing" for Consul.
  EXPECT_TRUE(HealthIds("upd", "passing=true").empty());

  ASSERT_EQ(Must(client().Get("/v1/agent/check/fail/app")).status, 200);
  EXPECT_EQ(CheckStatus("app"), "critical");

  AgentRegister("enc", "enc-1", 7004, {{"Check", json::object{{"TTL", "60s"}}}});
  ASSERT_EQ(Must(client().Put("/v1/agent/check/pass/service%3Aenc-1", "")).status, 200);
  EXPECT_EQ(CheckStatus("service:enc-1"), "passing");
  // A note of bytes that are not UTF-8 is stored as valid UTF-8.
  ASSERT_EQ(Must(client().Put("/v1/agent/check/warn/service%3Aenc-1?note=caf%E9", "")).status, 200);
  std::string note;
  EXPECT_EQ(CheckStatus("service:enc-1", &note), "warning");
  EXPECT_EQ(note, "caf\xEF\xBF\xBD");
}

TEST_F(ConsulApiTest, UnknownChecksAndChecksWithoutTtlAreRefusedAsConsulDoes) {
  wire::HttpResponse r = Must(client().Put("/v1/agent/check/pass/nope", ""));
  EXPECT_EQ(r.status, 404);
  EXPECT_THAT(r.body, HasSubstr("Unknown check ID \"nope\""));
  EXPECT_THAT(r.Header("Content-Type").value_or(""), HasSubstr("text/plain"));

  HttpTarget target;
  AgentRegister("http", "http-1", 7005,
                {{"Check", json::object{{"HTTP", "http://" + target.address() + "/health"},
                                        {"Interval", "200ms"}}}});
  r = Must(client().Put("/v1/agent/check/pass/service:http-1", ""));
  EXPECT_EQ(r.status, 500);
  EXPECT_THAT(r.body, HasSubstr("does not have associated TTL"));
}

// An HTTP check from a Consul definition is run by musterd.
TEST_F(ConsulApiTest, HttpCheckIsRunByMusterd) {
  HttpTarget target;
  AgentRegister("http", "http-1", 7006,
                {{"Check", json::object{{"HTTP", "http://" + target.address() + "/health"},
                                        {"Interval", "200ms"},
                                        {"Timeout", "1s"}}}});
  ASSERT_TRUE(WaitForCheck("service:http-1", "passing", milliseconds(10000)));
  target.set_status(500);
  ASSERT_TRUE(WaitForCheck("service:http-1", "critical", milliseconds(10000)));
  EXPECT_GT(target.requests(), 0);
}

// A service ID is one service on an agent: registered again under another
// Name, it moves there.
TEST_F(ConsulApiTest, AnIdRegisteredUnderANewNameMoves) {
  AgentRegister("old-name", "moving-1", 7016);
  AgentRegister("new-name", "moving-1", 7016);
  EXPECT_TRUE(List("old-name").instances.empty());
  EXPECT_EQ(List("new-name").ids(), std::vector<std::string>{"moving-1"});
  EXPECT_EQ(Read("/v1/agent/service/moving-1").at("Service").as_string(), "new-name");
}

TEST_F(ConsulApiTest, DeregisterRemovesTheService) {
  AgentRegister("gone", "gone-1", 7007);
  ASSERT_EQ(Must(client().Put("/v1/agent/service/deregister/gone-1", "")).status, 200);
  EXPECT_TRUE(List("gone").instances.empty());
  EXPECT_FALSE(Read("/v1/agent/services").as_object().contains("gone-1"));

  wire::HttpResponse r = Must(client().Put("/v1/agent/service/deregister/gone-1", ""));
  EXPECT_EQ(r.status, 404);
  EXPECT_THAT(r.body, HasSubstr("Unknown service ID"));
}

// Maintenance takes the instance out of discovery (a critical maintenance
// check) and back.
TEST_F(ConsulApiTest, MaintenanceModeTakesTheInstanceOutAndBack) {
  AgentRegister("maint", "maint-1", 7008);
  EXPECT_THAT(HealthIds("maint", "passing"), ::testing::ElementsAre("maint-1"));
  ASSERT_EQ(Must(client().Put("/v1/agent/service/maintenance/maint-1?enable=true&reason=deploy", ""))
                .status,
            200);
  EXPECT_TRUE(HealthIds("maint", "passing").empty());
  EXPECT_EQ(CheckStatus("_service_maintenance:maint-1"), "critical");
  EXPECT_TRUE(List("maint", "healthy=true").instances.empty());  // natively: disabled

  ASSERT_EQ(Must(client().Put("/v1/agent/service/maintenance/maint-1?enable=false", "")).status, 200);
  EXPECT_THAT(HealthIds("maint", "passing"), ::testing::ElementsAre("maint-1"));
  EXPECT_EQ(CheckStatus("_service_maintenance:maint-1"), "");

  EXPECT_EQ(Must(client().Put("/v1/agent/service/maintenance/maint-1", "")).status, 400);
  EXPECT_EQ(Must(client().Put("/v1/agent/service/maintenance/maint-1?enable=maybe", "")).status, 400);
  EXPECT_EQ(Must(client().Put("/v1/agent/service/maintenance/nope?enable=true", "")).status, 404);
}

TEST_F(ConsulApiTest, CatalogListsServicesWithTheirTagsAndFiltersByTag) {
  AgentRegister("api", "api-1", 7010, {{"Tags", json::array{"a", "b"}}});
  AgentRegister("api", "api-2", 7011, {{"Tags", json::array{"b", "c"}}});
  AgentRegister("db", "db-1", 7012);
  json::value services = Read("/v1/catalog/services");
  std::vector<std::string> tags;
  for (const auto& t : services.at("api").as_array()) tags.emplace_back(t.as_string());
  EXPECT_THAT(tags, UnorderedElementsAre("a", "b", "c"));
  EXPECT_TRUE(services.at("db").as_array().empty());

  json::value tagged = Read("/v1/catalog/service/api?tag=a");
  ASSERT_EQ(tagged.as_array().size(), 1u);
  EXPECT_EQ(tagged.as_array()[0].at("ServiceID").as_string(), "api-1");
  EXPECT_THAT(HealthIds("api", "tag=b"), UnorderedElementsAre("api-1", "api-2"));
  EXPECT_THAT(HealthIds("api", "tag=b&tag=c"), ::testing::ElementsAre("api-2"));

  EXPECT_EQ(Read("/v1/catalog/datacenters").as_array()[0].as_string(), "dc1");
  json::value nodes = Read("/v1/catalog/nodes");
  ASSERT_EQ(nodes.as_array().size(), 1u);
  EXPECT_FALSE(nodes.as_array()[0].at("Node").as_string().empty());
}

// health/checks lists a service's checks; health/state the checks in one
// state across services, the node's serfHealth among the passing ones.
TEST_F(ConsulApiTest, HealthChecksAndStateListChecks) {
  AgentRegister("st", "st-1", 7017, {{"Check", json::object{{"CheckID", "st-a"}, {"TTL", "60s"}}}});
  AgentRegister("st", "st-2", 7018,
                {{"Check", json::object{{"CheckID", "st-b"}, {"TTL", "60s"}, {"Status", "passing"}}}});
  auto ids_of = [](const json::value& checks) {
    std::vector<std::string> ids;
    for (const auto& c : checks.as_array()) ids.emplace_back(c.at("CheckID").as_string());
    return ids;
  };
  EXPECT_THAT(ids_of(Read("/v1/health/checks/st")), UnorderedElementsAre("st-a", "st-b"));
  EXPECT_THAT(ids_of(Read("/v1/health/state/critical")), ::testing::ElementsAre("st-a"));
  EXPECT_THAT(ids_of(Read("/v1/health/state/passing")), UnorderedElementsAre("serfHealth", "st-b"));
  EXPECT_THAT(ids_of(Read("/v1/health/state/any")), UnorderedElementsAre("serfHealth", "st-a", "st-b"));
  EXPECT_TRUE(Read("/v1/health/state/warning").as_array().empty());
}

// The agent's reads block too.
TEST_F(ConsulApiTest, AgentServicesBlockUntilAChange) {
  AgentRegister("ag", "ag-1", 7019);
  uint64_t index = 0;
  Read("/v1/agent/services", &index);
  BlockingQuery query(musterd_.address(), StrCat("/v1/agent/services?index=", index, "&wait=60s"),
                      milliseconds(90000));
  ASSERT_TRUE(WaitForBlockingQueries(musterd_.address(), 1));
  const auto changed = BlockingQuery::Clock::now();
  ASSERT_EQ(Must(client().Put("/v1/agent/service/deregister/ag-1", "")).status, 200);
  ASSERT_TRUE(query.AnsweredWithin(changed, milliseconds(30000)));
  EXPECT_TRUE(JsonOf(*query.Answer()).as_object().empty());
}

// ?filter= on health entries, in Consul's filter language.
TEST_F(ConsulApiTest, FilterNarrowsHealthEntries) {
  AgentRegister("flt", "flt-1", 7021,
                {{"Tags", json::array{"primary"}}, {"Meta", json::object{{"zone", "a"}}}});
  AgentRegister("flt", "flt-2", 7022,
                {{"Meta", json::object{{"zone", "b"}}}, {"Check", json::object{{"TTL", "60s"}}}});
  AgentRegister("flt", "flt-3", 7023, {{"Meta", json::object{{"zone", "a"}, {"version", "2.0"}}}});
  auto with = [&](const std::string& expression) {
    return HealthIds("flt", "filter=" + wire::Escape(expression));
  };
  EXPECT_THAT(with(R"(Service.Meta.zone == "a")"), UnorderedElementsAre("flt-1", "flt-3"));
  EXPECT_THAT(with(R"("primary" in Service.Tags)"), ::testing::ElementsAre("flt-1"));
  EXPECT_THAT(with("Service.Port == 7022"), ::testing::ElementsAre("flt-2"));
  EXPECT_THAT(with(R"(Checks.Status == "critical")"), ::testing::ElementsAre("flt-2"));
  EXPECT_THAT(with(R"(Service.Meta.version == "2.0" or Service.ID == "flt-2")"),
              UnorderedElementsAre("flt-2", "flt-3"));
  EXPECT_THAT(with(R"(not (Service.Meta.zone == "a") and Node.Datacenter == "dc1")"),
              ::testing::ElementsAre("flt-2"));
  // Combined with ?passing: flt-2's TTL check is critical.
  EXPECT_THAT(HealthIds("flt", "passing&filter=" + wire::Escape(R"(Service.Meta.zone != "a")")),
              ::testing::IsEmpty());

  wire::HttpResponse r = Get("/v1/health/service/flt?filter=" + wire::Escape("Service.Colour == red"));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_THAT(r.body, HasSubstr("Service.Colour"));
  r = Get("/v1/health/service/flt?filter=" + wire::Escape(R"(Service.ID == "unterminated)"));
  EXPECT_EQ(r.status, 400) << r.body;
  r = Get("/v1/catalog/service/flt?filter=" + wire::Escape(R"(ServiceID == "flt-1")"));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_THAT(r.body, HasSubstr("/v1/health/service"));
}

// A blocking query parks until a change of what it reads, and answers with
// a higher index.
TEST_F(ConsulApiTest, BlockingQueryWakesOnAChange) {
  AgentRegister("watch", "watch-1", 7013);
  uint64_t index = 0;
  Read("/v1/health/service/watch", &index);
  ASSERT_GT(index, 0u);
  BlockingQuery query(musterd_.address(),
                      StrCat("/v1/health/service/watch?index=", index, "&wait=60s"),
                      milliseconds(90000));
  ASSERT_TRUE(WaitForBlockingQueries(musterd_.address(), 1));
  const auto changed = BlockingQuery::Clock::now();
  AgentRegister("watch", "watch-2", 7014);
  ASSERT_TRUE(query.AnsweredWithin(changed, milliseconds(30000)));
  const wire::HttpResponse& r = *query.Answer();
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_GT(std::stoull(r.Header("X-Consul-Index").value_or("0")), index);
  EXPECT_EQ(JsonOf(r).as_array().size(), 2u);
}

// With no change, a blocking query answers at its wait with the same index.
TEST_F(ConsulApiTest, BlockingQueryAnswersAtItsWait) {
  AgentRegister("quiet", "quiet-1", 7015);
  uint64_t index = 0;
  Read("/v1/catalog/service/quiet", &index);
  const auto start = std::chrono::steady_clock::now();
  wire::HttpResponse r = Get(StrCat("/v1/catalog/service/quiet?index=", index, "&wait=1s"));
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_GE(took, milliseconds(900));
  EXPECT_EQ(r.Header("X-Consul-Index").value_or(""), StrCat(index));
  EXPECT_EQ(r.Header("X-Consul-KnownLeader").value_or(""), "true");
}

TEST_F(ConsulApiTest, BadInputGetsConsulsErrors) {
  struct Case {
    std::string method, target, body;
    int status;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"GET", "/v1/health/service/x?index=abc", "", 400, "Invalid index"},
      {"GET", "/v1/health/service/x?index=1&wait=forever", "", 400, "Invalid wait time"},
      {"GET", "/v1/health/state/sideways", "", 400, "Invalid state"},
      {"GET", "/v1/health/service/x?passing=maybe", "", 400, "passing"},
      {"GET", "/v1/catalog/services?dc=elsewhere", "", 500, "No path to datacenter"},
      {"PUT", "/v1/agent/service/register", "{not json", 400, ""},
      {"PUT", "/v1/agent/service/register", R"({"ID":"x","Port":80})", 400, "name"},
      {"PUT", "/v1/agent/service/register", R"({"Name":"x"})", 400, "Port"},
      {"PUT", "/v1/agent/service/register", R"({"Name":"x","Port":70000})", 400, "Port"},
      {"PUT", "/v1/agent/service/register", R"({"Name":"x","Port":80,"Check":{"TTL":"soon"}})", 400, ""},
      {"PUT", "/v1/agent/check/update/x", R"({"Status":"great"})", 400, "status"},
      {"GET", "/v1/agent/service/register", "", 405, "not allowed"},
      {"DELETE", "/v1/agent/services", "", 405, "not allowed"},
      {"GET", "/v1/agent/service/nope", "", 404, "unknown service ID"},
      {"GET", "/v1/no/such/thing", "", 404, ""},
  };
  for (const Case& c : cases) {
    absl::StatusOr<wire::HttpResponse> sent =
        c.method == "GET"      ? client().Get(c.target)
        : c.method == "DELETE" ? client().Delete(c.target)
                               : client().Put(c.target, c.body);
    wire::HttpResponse r = Must(std::move(sent));
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.target << " " << c.body << ": " << r.body;
    EXPECT_THAT(AsciiLowerForTest(r.body), HasSubstr(AsciiLowerForTest(c.says)))
        << c.method << " " << c.target;
  }
  // Nothing stored was lost on the way.
  EXPECT_TRUE(Read("/v1/agent/services").as_object().empty());
}

// PUT /v1/catalog/register and /v1/catalog/deregister for external services.
TEST_F(ConsulApiTest, CatalogRegisterAndDeregister) {
  wire::HttpResponse r =
      Put("/v1/catalog/register",
          json::object{{"Node", "external"},
                       {"Address", "127.0.0.1"},
                       {"Service", json::object{{"Service", "ext"}, {"ID", "ext-1"}, {"Port", 5432}}}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body.substr(0, 4), "true");
  ASSERT_EQ(List("ext").instances.size(), 1u);
  EXPECT_EQ(List("ext").instances[0].address, "127.0.0.1:5432");

  r = Put("/v1/catalog/deregister", json::object{{"Node", "external"}, {"ServiceID", "ext-1"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(List("ext").instances.empty());
}

TEST_F(ConsulApiTest, StatusAndAgentDescribeTheNode) {
  json::value leader = Read("/v1/status/leader");
  ASSERT_TRUE(leader.is_string()) << leader;
  EXPECT_EQ(std::string(leader.as_string()), musterd_.address());
  EXPECT_EQ(Read("/v1/status/peers").as_array().size(), 1u);
  json::value self = JsonOf(Get("/v1/agent/self"));
  EXPECT_EQ(self.at("Config").at("Datacenter").as_string(), "dc1");
  EXPECT_EQ(JsonOf(Get("/v1/agent/members")).as_array().size(), 1u);
}

class ConsulApiConfiguredTest : public MusterdTest {
 protected:
  std::vector<std::string> MusterdArgs() const override {
    return {"--datacenter", "eu-west", "--node-name", "node-7"};
  }
};

TEST_F(ConsulApiConfiguredTest, DatacenterAndNodeNameComeFromTheFlags) {
  json::value self = JsonOf(Must(client().Get("/v1/agent/self")));
  EXPECT_EQ(self.at("Config").at("Datacenter").as_string(), "eu-west");
  EXPECT_EQ(self.at("Config").at("NodeName").as_string(), "node-7");
  EXPECT_EQ(Must(client().Get("/v1/catalog/services?dc=eu-west")).status, 200);
  EXPECT_EQ(Must(client().Get("/v1/catalog/services?dc=dc1")).status, 500);
}

class ConsulApiOffTest : public MusterdTest {
 protected:
  std::vector<std::string> MusterdArgs() const override { return {"--consul-api", "false"}; }
};

TEST_F(ConsulApiOffTest, TurnedOffItIsNotFound) {
  wire::HttpResponse r = Must(client().Get("/v1/agent/services"));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(ErrorCodeOf(r), "not_found");
}

}  // namespace
}  // namespace muster::testing
