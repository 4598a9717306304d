// Active health checks end to end: a real musterd checks real targets on
// 127.0.0.1 (an HTTP server the test flips between 200, 429 and 500, a TCP
// port it opens and closes, a gRPC health service, a script) and reports
// every transition on the watch stream, in lists, in GET .../checks and to
// webhooks (a live receiver next to a hung one).
#include <chrono>
#include <optional>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/strings.h"
#include "integration/musterd_fixture.h"
#include "support/check_targets.h"
#include "support/run_command.h"

namespace muster::testing {
namespace {

using std::chrono::milliseconds;
namespace json = boost::json;

json::object Check(json::object fields) {
  if (!fields.contains("interval")) fields["interval"] = "100ms";
  if (!fields.contains("timeout")) fields["timeout"] = "1s";
  return fields;
}

class HealthCheckTest : public MusterdTest {
 protected:
  // Registers svc/id with the given checks.
  void RegisterWithChecks(const std::string& id, json::array checks, const std::string& address,
                          int want = 201) {
    auto r = Register("svc", id, RegisterBody(address, {{"checks", std::move(checks)}}));
    ASSERT_EQ(r.status, want) << r.body;
  }

  // The next "health" event of `id` on the stream (skipping other events),
  // within `timeout`.
  std::optional<WatchEvent> NextHealth(wire::SseStream& stream, const std::string& id,
                                       milliseconds timeout = milliseconds(10000)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto left = std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
      auto raw = stream.Next(std::max(left, milliseconds(1)));
      if (!raw.ok()) break;
      auto e = ParseEvent(*raw);
      if (e && e->type == "health" && e->id == id) return e;
    }
    ADD_FAILURE() << "no health event for " << id;
    return std::nullopt;
  }

  std::vector<std::string> Healthy() { return List("svc", "healthy=true").ids(); }

  wire::HttpResponse PutWithToken(const std::string& id, const std::string& body,
                                    const std::string& token) {
    wire::HttpRequest req;
    req.method = "PUT";
    req.target = InstancePath("svc", id);
    req.body = body;
    req.headers = {{"X-Muster-Token", token}};
    return Must(client().Do(req));
  }
};

TEST_F(HealthCheckTest, HttpCheckDrivesHealthEventsAndHealthyLists) {
  HttpTarget target;
  auto watch = Watch(wire::WatchTarget("", {"svc"}));
  ASSERT_NE(watch, nullptr);
  ASSERT_NO_FATAL_FAILURE(RegisterWithChecks(
      "web-1",
      json::array{Check({{"id", "web"}, {"type", "http"}, {"target", "/health"}, {"rise", 1}, {"fall", 2}})},
      target.address()));
  // Unchecked: critical, so not handed out yet.
  auto listed = List("svc");
  ASSERT_EQ(listed.instances.size(), 1u);
  EXPECT_EQ(listed.instances[0].health, Health::kCritical);

  auto up = NextHealth(*watch, "web-1");
  ASSERT_TRUE(up.has_value());
  ASSERT_TRUE(up->check.has_value());
  EXPECT_EQ(up->check->id, "web");
  EXPECT_EQ(up->check->status, Health::kPassing);
  EXPECT_NE(up->check->output.find("200"), std::string::npos) << up->check->output;
  EXPECT_EQ(up->instance.health, Health::kPassing);
  EXPECT_EQ(Healthy(), std::vector<std::string>{"web-1"});

  target.set_status(429);
  auto warn = NextHealth(*watch, "web-1");
  ASSERT_TRUE(warn.has_value());
  EXPECT_EQ(warn->instance.health, Health::kWarning);
  EXPECT_NE(warn->check->output.find("429"), std::string::npos) << warn->check->output;
  EXPECT_EQ(Healthy(), std::vector<std::string>{"web-1"});  // warning is still handed out

  target.set_status(500);
  auto down = NextHealth(*watch, "web-1");
  ASSERT_TRUE(down.has_value());
  EXPECT_EQ(down->instance.health, Health::kCritical);
  EXPECT_TRUE(Healthy().empty());
  EXPECT_EQ(List("svc").ids(), std::vector<std::string>{"web-1"});  // still registered

  // The live state shows the latest output.
  auto checks = Must(client().Get(wire::ChecksPath("svc", "web-1")));
  ASSERT_EQ(checks.status, 200) << checks.body;
  const json::value answer = JsonOf(checks);
  const json::object& c0 = answer.at("checks").at(0).as_object();
  EXPECT_EQ(c0.at("status").as_string(), "critical");
  EXPECT_NE(std::string(c0.at("live").at("last_output").as_string()).find("500"), std::string::npos)
      << checks.body;

  target.set_status(200);
  auto back = NextHealth(*watch, "web-1");
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->instance.health, Health::kPassing);
  EXPECT_GT(back->revision, down->revision);
}

// A reported check (a ttl check with a ttl): it starts in the status it was
// registered with, takes each report at once (the answer comes once the
// catalog holds it), stays passing while reports come within the ttl, and
// lapses to critical ("TTL expired") when they stop; the instance stays.
TEST_F(HealthCheckTest, ReportedCheckTakesReportsAndLapsesWhenTheyStop) {
  auto watch = Watch(wire::WatchTarget("", {"svc"}));
  ASSERT_NE(watch, nullptr);
  ASSERT_NO_FATAL_FAILURE(RegisterWithChecks(
      "app-1", json::array{json::object{{"id", "app"}, {"type", "ttl"}, {"ttl", "2s"}, {"status", "warning"}}},
      "127.0.0.1:7100"));
  auto listed = List("svc");
  ASSERT_EQ(listed.instances.size(), 1u);
  EXPECT_EQ(listed.instances[0].health, Health::kWarning);
  EXPECT_EQ(listed.instances[0].ttl_seconds, 0u);  // no lease: the check keeps it
  ASSERT_EQ(listed.instances[0].checks.size(), 1u);
  EXPECT_EQ(listed.instances[0].checks[0].ttl, milliseconds(2000));

  const std::string report = wire::ChecksPath("svc", "app-1") + "/app";
  auto r = Must(client().Put(report, R"({"status":"passing","output":"all good"})"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(JsonOf(r).at("check").at("status").as_string(), "passing");
  // Answered once stored: the list shows it already.
  listed = List("svc");
  EXPECT_EQ(listed.instances[0].health, Health::kPassing);
  EXPECT_EQ(listed.instances[0].checks[0].output, "all good");

  // Reports well within the ttl keep it passing past several ttls' worth.
  for (int i = 0; i < 10; ++i) {
    std::this_thread::sleep_for(milliseconds(300));
    ASSERT_EQ(Must(client().Post(report, R"({"status":"passing","output":"all good"})")).status, 200);
  }
  EXPECT_EQ(List("svc").instances[0].health, Health::kPassing);

  // Then silence: critical within about the ttl, and still registered.
  std::optional<WatchEvent> lapsed;
  for (int i = 0; i < 5 && !(lapsed && lapsed->instance.health == Health::kCritical); ++i) {
    lapsed = NextHealth(*watch, "app-1");
  }
  ASSERT_TRUE(lapsed.has_value());
  EXPECT_EQ(lapsed->instance.health, Health::kCritical);
  ASSERT_TRUE(lapsed->check.has_value());
  EXPECT_EQ(lapsed->check->output, "TTL expired");
  EXPECT_EQ(List("svc").ids(), std::vector<std::string>{"app-1"});
}

TEST_F(HealthCheckTest, ReportsToUnknownOrUnreportableChecksAreRefused) {
  ASSERT_NO_FATAL_FAILURE(RegisterWithChecks(
      "mixed-1",
      json::array{json::object{{"id", "lease"}, {"type", "ttl"}},
                  json::object{{"id", "app"}, {"type", "ttl"}, {"ttl", "30s"}}},
      "127.0.0.1:7101"));
  const std::string base = wire::ChecksPath("svc", "mixed-1");
  auto r = Must(client().Put(base + "/nope", R"({"status":"passing"})"));
  EXPECT_EQ(r.status, 404) << r.body;
  r = Must(client().Put(base + "/lease", R"({"status":"passing"})"));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(ErrorCodeOf(r), "failed_precondition");
  r = Must(client().Put(wire::ChecksPath("svc", "ghost") + "/app", R"({"status":"passing"})"));
  EXPECT_EQ(r.status, 404) << r.body;
  for (const char* body : {R"({"status":"fine"})", R"({"output":"x"})", R"({"status":"passing","x":1})", "[]", "{"}) {
    r = Must(client().Put(base + "/app", body));
    EXPECT_EQ(r.status, 400) << body << ": " << r.body;
    EXPECT_EQ(ErrorCodeOf(r), "invalid_argument") << body;
  }
  EXPECT_EQ(Must(client().Get(base + "/app")).status, 405);
  r = Must(client().Put(base + "/a%20b", R"({"status":"passing"})"));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_THAT(ErrorMessageOf(r), ::testing::HasSubstr("check id"));
  // Nothing was lost: still registered, the reported check as it started.
  auto listed = List("svc");
  ASSERT_EQ(listed.instances.size(), 1u);
  EXPECT_EQ(listed.instances[0].checks[1].status, Health::kCritical);
}

TEST_F(HealthCheckTest, FallThresholdDampsASingleFailure) {
  HttpTarget target;
  ASSERT_NO_FATAL_FAILURE(RegisterWithChecks(
      "web-1",
      json::array{Check({{"type", "http"}, {"rise", 1}, {"fall", 100}, {"interval", "100ms"}})},
      target.address()));
  for (int i = 0; i < 100 && Healthy().empty(); ++i) std::this_thread::sleep_for(milliseconds(50));
  ASSERT_EQ(Healthy(), std::vector<std::string>{"web-1"});
  // Many failures, but fewer than `fall`: the instance stays in discovery.
  target.set_status(500);
  const int seen = target.requests();
  for (int i = 0; i < 200 && target.requests() < seen + 5; ++i) std::this_thread::sleep_for(milliseconds(20));
  ASSERT_GE(target.requests(), seen + 5) << "the check stopped running";
  EXPECT_EQ(Healthy(), std::vector<std::string>{"web-1"});
  auto checks = JsonOf(Must(client().Get(wire::ChecksPath("svc", "web-1"))));
  const json::object& live = checks.at("checks").at(0).at("live").as_object();
  EXPECT_EQ(live.at("status").as_string(), "passing");
  EXPECT_EQ(live.at("last_result").as_string(), "critical");
  EXPECT_GE(live.at("streak").as_int64(), 5);
}

TEST_F(HealthCheckTest, TcpCheckFollowsThePort) {
  TcpTarget target;
  auto watch = Watch(wire::WatchTarget("", {"svc"}));
  ASSERT_NE(watch, nullptr);
  ASSERT_NO_FATAL_FAILURE(RegisterWithChecks(
      "db-1", json::array{Check({{"type", "tcp"}, {"rise", 1}, {"fall", 1}})}, target.address()));
  auto up = NextHealth(*watch, "db-1");
  ASSERT_TRUE(up.has_value());
  EXPECT_EQ(up->instance.health, Health::kPassing);
  target.Close();
  auto down = NextHealth(*watch, "db-1");
  ASSERT_TRUE(down.has_value());
  EXPECT_EQ(down->instance.health, Health::kCritical);
  target.Open();
  auto again = NextHealth(*watch, "db-1");
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->instance.health, Health::kPassing);
}

TEST_F(HealthCheckTest, DeregisterCriticalAfterRemovesTheInstance) {
  TcpTarget target;
  target.Close();
  auto watch = Watch(wire::WatchTarget("", {"svc"}));
  ASSERT_NE(watch, nullptr);
  ASSERT_NO_FATAL_FAILURE(RegisterWithChecks(
      "gone-1",
      json::array{Check({{"type", "tcp"}, {"fall", 1}, {"deregister_critical_after", "1s"}})},
      target.address()));
  std::optional<WatchEvent> removed;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!removed && std::chrono::steady_clock::now() < deadline) {
    auto raw = watch->Next(milliseconds(500));
    if (!raw.ok()) continue;
    auto e = ParseEvent(*raw);
    if (e && e->type == "deregistered") removed = e;
  }
  ASSERT_TRUE(removed.has_value()) << "never deregistered";
  EXPECT_EQ(removed->id, "gone-1");
  EXPECT_TRUE(List("svc").instances.empty());
}

// Check states are durable, and after a restart the checks run again.
TEST_F(HealthCheckTest, StatesSurviveARestartAndChecksResume) {
  HttpTarget target;
  ASSERT_NO_FATAL_FAILURE(RegisterWithChecks(
      "web-1", json::array{Check({{"type", "http"}, {"rise", 1}, {"fall", 1}})}, target.address()));
  for (int i = 0; i < 100 && Healthy().empty(); ++i) std::this_thread::sleep_for(milliseconds(50));
  ASSERT_EQ(Healthy(), std::vector<std::string>{"web-1"});
  ASSERT_EQ(musterd_.Terminate(), 0);
  target.set_status(503);
  ASSERT_TRUE(musterd_.Restart().ok());
  Reconnect();
  auto watch = Watch(wire::WatchTarget("", {"svc"}));
  ASSERT_NE(watch, nullptr);
  // Read back as it was, then the resumed check finds the target down.
  auto listed = List("svc");
  ASSERT_EQ(listed.instances.size(), 1u);
  const uint64_t restarted_at = listed.revision;
  if (listed.instances[0].health == Health::kPassing) {
    auto down = NextHealth(*watch, "web-1");
    ASSERT_TRUE(down.has_value());
    EXPECT_GT(down->revision, restarted_at);
  }
  EXPECT_TRUE(Healthy().empty());
  EXPECT_NE(List("svc").instances[0].checks[0].output.find("503"), std::string::npos);
}

TEST_F(HealthCheckTest, ChecksWithoutALeaseNeedNoHeartbeat) {
  TcpTarget target;
  ASSERT_NO_FATAL_FAILURE(RegisterWithChecks("db-1", json::array{Check({{"type", "tcp"}})},
                                             target.address()));
  EXPECT_EQ(List("svc").instances.at(0).ttl_seconds, 0u);
}

TEST_F(HealthCheckTest, ScriptChecksAreRefusedByDefault) {
  auto r = Register("svc", "s-1",
                    RegisterBody("127.0.0.1:9", {{"checks", json::array{json::object{
                                                                {"type", "script"}, {"target", "/bin/true"}}}}}));
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(ErrorCodeOf(r), "permission_denied");
  EXPECT_NE(ErrorMessageOf(r).find("--enable-script-checks"), std::string::npos) << r.body;
  EXPECT_TRUE(List("svc").instances.empty());
}

TEST_F(HealthCheckTest, BadChecksAreRefusedAndStoreNothing) {
  auto r = Register("svc", "x-1",
                    RegisterBody("127.0.0.1:9", {{"checks", json::array{json::object{
                                                                {"type", "http"}, {"interval", "fast"}}}}}));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(ErrorCodeOf(r), "invalid_argument");
  EXPECT_TRUE(List("svc").instances.empty());
}

// gRPC checks ask the standard health service about the named service.
TEST_F(HealthCheckTest, GrpcCheckFollowsTheHealthService) {
  GrpcHealthTarget target;
  ASSERT_TRUE(target.started());
  target.SetServing("orders.v1.Orders", true);
  auto watch = Watch(wire::WatchTarget("", {"svc"}));
  ASSERT_NE(watch, nullptr);
  ASSERT_NO_FATAL_FAILURE(RegisterWithChecks(
      "rpc-1",
      json::array{Check({{"id", "rpc"}, {"type", "grpc"}, {"grpc_service", "orders.v1.Orders"},
                         {"rise", 1}, {"fall", 1}})},
      target.address()));
  auto up = NextHealth(*watch, "rpc-1");
  ASSERT_TRUE(up.has_value());
  EXPECT_EQ(up->instance.health, Health::kPassing);
  EXPECT_EQ(up->check->output, "SERVING");
  EXPECT_EQ(Healthy(), std::vector<std::string>{"rpc-1"});

  target.SetServing("orders.v1.Orders", false);
  auto down = NextHealth(*watch, "rpc-1");
  ASSERT_TRUE(down.has_value());
  EXPECT_EQ(down->instance.health, Health::kCritical);
  EXPECT_EQ(down->check->output, "NOT_SERVING");
  EXPECT_TRUE(Healthy().empty());

  target.SetServing("orders.v1.Orders", true);
  auto back = NextHealth(*watch, "rpc-1");
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->instance.health, Health::kPassing);
}

// A webhook URL musterd cannot use stops it at startup, with the reason.
TEST(WebhookConfigTest, AnUnusableWebhookUrlStopsMusterd) {
  auto dir = MakeTempDir("muster-webhook");
  ASSERT_TRUE(dir.ok()) << dir.status();
  CommandResult r = RunCommand({MUSTERD_PATH, "--listen", "127.0.0.1:0", "--xds-listen", "",
                                "--data-dir", *dir, "--webhook", "ftp://127.0.0.1/hook"});
  EXPECT_EQ(r.exit_code, 2) << r;
  EXPECT_NE(r.err.find("ftp://127.0.0.1/hook"), std::string::npos) << r;
  std::filesystem::remove_all(*dir);
}

// Webhooks: a live receiver and a hung one (accepts, never answers). Every
// transition reaches the live one; the hung one only costs its own attempts.
class WebhookTest : public HealthCheckTest {
 protected:
  std::vector<std::string> MusterdArgs() const override {
    return {"--webhook",         StrCat("http://", hung_.address(), "/hook"),
            "--webhook",         StrCat("http://", sink_.address(), "/hook"),
            "--webhook-timeout", "300ms",
            "--webhook-attempts", "2"};
  }

  // The events the live receiver got, decoded.
  std::vector<json::object> Received() const {
    std::vector<json::object> out;
    for (const std::string& body : sink_.bodies()) {
      boost::system::error_code ec;
      json::value v = json::parse(body, ec);
      if (ec || !v.is_object()) {
        ADD_FAILURE() << "not a JSON object: " << body;
        continue;
      }
      out.push_back(v.as_object());
    }
    return out;
  }

  // Waits for an event of `type` about `id` (with `to`, when given).
  std::optional<json::object> WaitForEvent(const std::string& type, const std::string& id,
                                           const std::string& to = "") {
    std::optional<json::object> found;
    sink_.WaitForBodies([&](const std::vector<std::string>&) {
      for (const json::object& e : Received()) {
        if (e.at("type").as_string() == type && e.at("id").as_string() == id &&
            (to.empty() || (e.contains("to") && e.at("to").as_string() == to))) {
          found = e;
          return true;
        }
      }
      return false;
    });
    if (!found) ADD_FAILURE() << "no " << type << " event for " << id << " " << to;
    return found;
  }

  json::object Webhooks() {
    return JsonOf(Must(client().Get("/healthz"))).at("webhooks").as_object();
  }

  SilentPort hung_;
  HttpTarget sink_;
};

TEST_F(WebhookTest, TransitionsArePostedAndAHungWebhookBlocksNothing) {
  HttpTarget target;
  ASSERT_NO_FATAL_FAILURE(RegisterWithChecks(
      "web-1", json::array{Check({{"id", "web"}, {"type", "http"}, {"rise", 1}, {"fall", 1}})},
      target.address()));
  auto up = WaitForEvent("health", "web-1", "passing");
  ASSERT_TRUE(up.has_value());
  EXPECT_EQ(up->at("service").as_string(), "svc");
  EXPECT_EQ(up->at("check").as_string(), "web");
  EXPECT_EQ(up->at("check_type").as_string(), "http");
  EXPECT_EQ(up->at("health").as_string(), "passing");

  target.set_status(500);
  auto down = WaitForEvent("health", "web-1", "critical");
  ASSERT_TRUE(down.has_value());
  EXPECT_EQ(down->at("from").as_string(), "passing");
  EXPECT_EQ(down->at("health").as_string(), "critical");
  EXPECT_EQ(down->at("address").as_string(), target.address());
  EXPECT_NE(std::string(down->at("output").as_string()).find("500"), std::string::npos);
  EXPECT_GT(U64(down->at("revision")), U64(up->at("revision")));
  EXPECT_TRUE(Healthy().empty());

  // Meanwhile the hung webhook used up its attempts on the first event: it
  // held nothing up.
  ASSERT_TRUE(WaitFor([&] { return U64(Webhooks().at("failed")) >= 1; }, milliseconds(20000)))
      << json::serialize(Webhooks());
  const json::object counts = Webhooks();
  EXPECT_GE(U64(counts.at("delivered")), 2u) << json::serialize(counts);
  EXPECT_GE(U64(counts.at("retries")), 1u) << json::serialize(counts);
}

// A lapsed lease is the TTL check's transition: webhooks hear of it.
TEST_F(WebhookTest, ALapsedLeaseIsPosted) {
  auto r = Register("svc", "leased-1", RegisterBody("127.0.0.1:9", {{"ttl_seconds", 1}}));
  ASSERT_EQ(r.status, 201) << r.body;
  auto expired = WaitForEvent("expired", "leased-1");
  ASSERT_TRUE(expired.has_value());
  EXPECT_EQ(U64(expired->at("ttl_seconds")), 1u);
  EXPECT_TRUE(List("svc").instances.empty());
}

constexpr const char* kToken = "0123456789abcdef-token";

class ScriptCheckTest : public HealthCheckTest {
 protected:
  std::vector<std::string> MusterdArgs() const override {
    return {"--enable-script-checks", "--script-checks-token", kToken};
  }
};

TEST_F(ScriptCheckTest, ScriptChecksNeedTheTokenAndThenRun) {
  const std::string body =
      RegisterBody("127.0.0.1:9", {{"checks", json::array{Check({{"type", "script"},
                                                                  {"target", "/bin/sh"},
                                                                  {"args", json::array{"-c", "echo disk ok; exit 1"}},
                                                                  {"rise", 1}})}}});
  auto no_token = Register("svc", "s-1", body);
  EXPECT_EQ(no_token.status, 403) << no_token.body;
  EXPECT_NE(ErrorMessageOf(no_token).find("X-Muster-Token"), std::string::npos);

  auto wrong = PutWithToken("s-1", body, "nope");
  EXPECT_EQ(wrong.status, 403) << wrong.body;
  EXPECT_TRUE(List("svc").instances.empty());

  auto ok = PutWithToken("s-1", body, kToken);
  ASSERT_EQ(ok.status, 201) << ok.body;
  // Exit 1 is a warning; the output is the script's.
  bool warned = false;
  for (int i = 0; i < 100 && !warned; ++i) {
    std::this_thread::sleep_for(milliseconds(50));
    auto listed = List("svc");
    warned = !listed.instances.empty() && listed.instances[0].health == Health::kWarning;
    if (warned) {
      EXPECT_NE(listed.instances[0].checks.at(0).output.find("disk ok"), std::string::npos);
    }
  }
  EXPECT_TRUE(warned);
}

}  // namespace
}  // namespace muster::testing
