// Health checks in the instance model: the "checks" JSON of a registration
// (strict), of a stored instance (lenient, round trip), their validation and
// limits, and how check states carry over a re-registration.
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "core/json_codec.h"
#include "core/validation.h"
#include "support/status_matchers.h"

namespace muster {
namespace {

using ::muster::testing::IsOk;
using ::muster::testing::StatusIs;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

absl::StatusOr<Instance> Parse(std::string_view body, const Limits& limits = {}) {
  return ParseRegistration(body, "default", "orders", "orders-1", limits);
}

// A register body with the given checks array (JSON) and further fields.
std::string WithChecks(const std::string& checks, const std::string& extra = "") {
  return absl::StrCat(R"({"address":"127.0.0.1:8080","checks":)", checks, extra, "}");
}

TEST(CheckJson, EveryFieldOfAnHttpCheckIsRead) {
  auto in = Parse(WithChecks(R"([{"id":"web","type":"http","target":"/health","interval":"5s",
      "timeout":"500ms","rise":3,"fall":4,"deregister_critical_after":"5m","method":"HEAD",
      "headers":{"X-Probe":"1"},"tls_skip_verify":true}])"));
  ASSERT_THAT(in.status(), IsOk());
  ASSERT_EQ(in->checks.size(), 1u);
  const Check& c = in->checks[0];
  EXPECT_EQ(c.id, "web");
  EXPECT_EQ(c.type, CheckType::kHttp);
  EXPECT_EQ(c.target, "/health");
  EXPECT_EQ(c.interval, 5s);
  EXPECT_EQ(c.timeout, 500ms);
  EXPECT_EQ(c.rise, 3u);
  EXPECT_EQ(c.fall, 4u);
  EXPECT_EQ(c.deregister_critical_after, 5min);
  EXPECT_EQ(c.method, "HEAD");
  EXPECT_EQ(c.headers.at("X-Probe"), "1");
  EXPECT_TRUE(c.tls_skip_verify);
}

TEST(CheckJson, DefaultsAndIdFromType) {
  auto in = Parse(WithChecks(R"([{"type":"tcp"}])"));
  ASSERT_THAT(in.status(), IsOk());
  const Check& c = in->checks[0];
  EXPECT_EQ(c.id, "tcp");
  EXPECT_EQ(c.interval, 10s);
  EXPECT_EQ(c.timeout, 2s);
  EXPECT_EQ(c.rise, 2u);
  EXPECT_EQ(c.fall, 3u);
  EXPECT_EQ(c.deregister_critical_after, 0ms);
}

TEST(CheckJson, ActiveChecksAloneMeanNoLeaseUnlessAsked) {
  auto active = Parse(WithChecks(R"([{"type":"tcp"}])"));
  ASSERT_THAT(active.status(), IsOk());
  EXPECT_EQ(active->ttl_seconds, 0u);

  auto explicit_ttl = Parse(WithChecks(R"([{"type":"tcp"}])", R"(,"ttl_seconds":15)"));
  ASSERT_THAT(explicit_ttl.status(), IsOk());
  EXPECT_EQ(explicit_ttl->ttl_seconds, 15u);

  auto with_ttl_check = Parse(WithChecks(R"([{"type":"tcp"},{"type":"ttl"}])"));
  ASSERT_THAT(with_ttl_check.status(), IsOk());
  EXPECT_EQ(with_ttl_check->ttl_seconds, kDefaultTtlSeconds);

  auto none = Parse(R"({"address":"127.0.0.1:8080"})");
  ASSERT_THAT(none.status(), IsOk());
  EXPECT_EQ(none->ttl_seconds, kDefaultTtlSeconds);
}

TEST(CheckJson, StrictRegistrationRefusesBadChecks) {
  EXPECT_THAT(Parse(WithChecks(R"({"type":"tcp"})")).status(),
              StatusIs(kInvalid, HasSubstr("\"checks\" must be an array")));
  EXPECT_THAT(Parse(WithChecks(R"([{"id":"a"}])")).status(),
              StatusIs(kInvalid, HasSubstr("\"checks.type\" is required")));
  EXPECT_THAT(Parse(WithChecks(R"([{"type":"icmp"}])")).status(),
              StatusIs(kInvalid, HasSubstr("checks.type")));
  EXPECT_THAT(Parse(WithChecks(R"([{"type":"tcp","every":"1s"}])")).status(),
              StatusIs(kInvalid, HasSubstr("unknown field \"checks.every\"")));
  EXPECT_THAT(Parse(WithChecks(R"([{"type":"tcp","interval":10}])")).status(),
              StatusIs(kInvalid, HasSubstr("duration string")));
  EXPECT_THAT(Parse(WithChecks(R"([{"type":"tcp","interval":"soon"}])")).status(),
              StatusIs(kInvalid, HasSubstr("checks.interval")));
  EXPECT_THAT(Parse(WithChecks(R"([{"type":"tcp","interval":"10ms"}])")).status(),
              StatusIs(kInvalid, HasSubstr("interval must be 100ms..24h")));
  EXPECT_THAT(Parse(WithChecks(R"([{"type":"tcp","timeout":"0s"}])")).status(),
              StatusIs(kInvalid, HasSubstr("timeout must be above 0s")));
  EXPECT_THAT(Parse(WithChecks(R"([{"type":"tcp","rise":0}])")).status(),
              StatusIs(kInvalid, HasSubstr("rise and fall must be 1..100")));
  EXPECT_THAT(Parse(WithChecks(R"([{"type":"tcp","target":"no-port"}])")).status(),
              StatusIs(kInvalid, HasSubstr("check \"tcp\": target")));
  EXPECT_THAT(Parse(WithChecks(R"([{"type":"http","target":"ftp://x/"}])")).status(),
              StatusIs(kInvalid, HasSubstr("an http target is a path")));
  EXPECT_THAT(Parse(WithChecks(R"([{"type":"http","method":"GET /x"}])")).status(),
              StatusIs(kInvalid, HasSubstr("method")));
  EXPECT_THAT(Parse(WithChecks(R"([{"type":"http","headers":{"X":"a\r\nEvil: 1"}}])")).status(),
              StatusIs(kInvalid, HasSubstr("bad value for header")));
  EXPECT_THAT(Parse(WithChecks(R"([{"type":"script"}])")).status(),
              StatusIs(kInvalid, HasSubstr("needs the program")));
  EXPECT_THAT(Parse(WithChecks(R"([{"type":"tcp"},{"type":"tcp"}])")).status(),
              StatusIs(kInvalid, HasSubstr("two checks have the id \"tcp\"")));
  EXPECT_THAT(Parse(WithChecks(R"([{"type":"ttl"},{"type":"ttl","id":"t2"}])")).status(),
              StatusIs(kInvalid, HasSubstr("at most one ttl check")));
  EXPECT_THAT(Parse(WithChecks(R"([{"type":"ttl"}])", R"(,"ttl_seconds":0)")).status(),
              StatusIs(kInvalid, HasSubstr("needs ttl_seconds above 0")));
  Limits two;
  two.max_checks_per_instance = 2;
  EXPECT_THAT(
      Parse(WithChecks(R"([{"type":"tcp"},{"type":"http"},{"type":"grpc"}])"), two).status(),
      StatusIs(kInvalid, HasSubstr("more than 2 checks")));
}

TEST(CheckJson, ListedInstanceCanBeSentBackAndRoundTrips) {
  Instance in;
  in.service = "orders";
  in.id = "orders-1";
  in.address = "127.0.0.1:8080";
  in.ttl_seconds = 0;
  Check http;
  http.id = "web";
  http.type = CheckType::kHttp;
  http.target = "https://127.0.0.1:8443/health";
  http.headers = {{"Authorization", "Bearer x"}};
  http.deregister_critical_after = 90s;
  http.status = Health::kWarning;
  http.output = "HTTP 429 Too Many Requests";
  Check script;
  script.id = "disk";
  script.type = CheckType::kScript;
  script.target = "/usr/lib/check_disk";
  script.args = {"-w", "80%"};
  Check grpc;
  grpc.id = "rpc";
  grpc.type = CheckType::kGrpc;
  grpc.grpc_service = "orders.v1.Orders";
  in.checks = {http, script, grpc};
  in.health = in.WorstCheck();

  // The store's lenient decoding keeps the registry's fields.
  auto back = ParseInstance(SerializeInstance(in));
  ASSERT_THAT(back.status(), IsOk());
  ASSERT_EQ(back->checks.size(), 3u);
  EXPECT_TRUE(back->SameSpec(in));
  EXPECT_EQ(back->checks[0].status, Health::kWarning);
  EXPECT_EQ(back->checks[0].output, "HTTP 429 Too Many Requests");
  EXPECT_EQ(back->health, Health::kCritical);  // the never-run checks are critical

  // A registration accepts the listed form (status and output are ignored).
  auto again = Parse(SerializeInstance(in));
  ASSERT_THAT(again.status(), IsOk());
  EXPECT_TRUE(again->SameSpec(in));
  EXPECT_EQ(again->checks[0].status, Health::kCritical);
  EXPECT_EQ(again->checks[0].output, "");
}

// A registration drops the fields of other check types. They are not stored,
// so keeping them made the instance read back after a restart differ from the
// one registered, and sending the same body again then reset the check's
// state. Found by fuzz/instance_json_fuzz.
TEST(CheckJson, FieldsOfOtherTypesAreDroppedSoTheStoredInstanceIsTheSame) {
  auto in = Parse(WithChecks(R"([
      {"id":"lease","type":"ttl","target":"/x","interval":"500ms","timeout":"1s","rise":5,
       "fall":5,"deregister_critical_after":"1m","method":"POST"},
      {"type":"tcp","method":"POST","headers":{"a":"b"},"tls_skip_verify":true,
       "grpc_service":"s","args":["x"]},
      {"type":"http","grpc_service":"s","args":["x"]},
      {"type":"script","target":"/bin/true","grpc_service":"s","headers":{"a":"b"}}])",
                             R"(,"ttl_seconds":30)"));
  ASSERT_THAT(in.status(), IsOk());
  ASSERT_EQ(in->checks.size(), 4u);
  const Check unset;
  const Check& ttl = in->checks[0];
  EXPECT_EQ(ttl.target, "");
  EXPECT_EQ(ttl.interval, unset.interval);
  EXPECT_EQ(ttl.timeout, unset.timeout);
  EXPECT_EQ(ttl.rise, unset.rise);
  EXPECT_EQ(ttl.fall, unset.fall);
  EXPECT_EQ(ttl.deregister_critical_after, unset.deregister_critical_after);
  EXPECT_EQ(ttl.method, "GET");
  const Check& tcp = in->checks[1];
  EXPECT_EQ(tcp.method, "GET");
  EXPECT_TRUE(tcp.headers.empty());
  EXPECT_FALSE(tcp.tls_skip_verify);
  EXPECT_EQ(tcp.grpc_service, "");
  EXPECT_TRUE(tcp.args.empty());
  EXPECT_EQ(in->checks[2].grpc_service, "");
  EXPECT_TRUE(in->checks[2].args.empty());
  EXPECT_EQ(in->checks[3].target, "/bin/true");
  EXPECT_TRUE(in->checks[3].headers.empty());

  // What the store writes, read back after a restart, is the same instance.
  auto stored = ParseInstance(SerializeInstance(*in));
  ASSERT_THAT(stored.status(), IsOk());
  EXPECT_TRUE(stored->SameSpec(*in));
}

// A ttl check with a ttl of its own is a reported check: no lease needed,
// several allowed, its status read from the registration, its ttl and
// deregister_critical_after kept through the store.
TEST(CheckJson, ReportedTtlChecks) {
  auto in = Parse(WithChecks(
      R"([{"id":"service:web-1","type":"ttl","ttl":"15s","status":"warning","deregister_critical_after":"1m"},
          {"id":"app","type":"ttl","ttl":"500ms"}])"));
  ASSERT_THAT(in.status(), IsOk());
  EXPECT_EQ(in->ttl_seconds, 0u);  // the checks keep it, no lease
  ASSERT_EQ(in->checks.size(), 2u);
  const Check& c = in->checks[0];
  EXPECT_TRUE(c.IsReported());
  EXPECT_FALSE(c.IsLease());
  EXPECT_EQ(c.ttl, 15s);
  EXPECT_EQ(c.status, Health::kWarning);
  EXPECT_EQ(c.deregister_critical_after, 1min);
  EXPECT_EQ(in->checks[1].status, Health::kCritical);  // the default start

  Instance adopted = *in;
  adopted.AdoptCheckStates(nullptr);
  EXPECT_EQ(adopted.checks[0].status, Health::kWarning);
  EXPECT_EQ(adopted.health, Health::kCritical);

  auto back = ParseInstance(SerializeInstance(adopted));
  ASSERT_THAT(back.status(), IsOk());
  EXPECT_TRUE(back->SameSpec(adopted));
  EXPECT_EQ(back->checks[0].ttl, 15s);

  // A lease check and reported ones together.
  EXPECT_THAT(Parse(WithChecks(R"([{"type":"ttl"},{"id":"r","type":"ttl","ttl":"10s"}])")).status(),
              IsOk());
  EXPECT_THAT(Parse(WithChecks(R"([{"type":"ttl","ttl":"10ms"}])")).status(),
              StatusIs(kInvalid, HasSubstr("ttl must be 100ms..24h")));
  EXPECT_THAT(Parse(WithChecks(R"([{"type":"ttl","ttl":"10s","status":"fine"}])")).status(),
              StatusIs(kInvalid, HasSubstr("checks.status")));
  // A ttl on another type is dropped with the other fields it cannot hold.
  auto tcp = Parse(WithChecks(R"([{"type":"tcp","ttl":"10s"}])"));
  ASSERT_THAT(tcp.status(), IsOk());
  EXPECT_EQ(tcp->checks[0].ttl, 0ms);
  // Check ids may hold ':' (Consul's "service:web-1"), names may not.
  EXPECT_THAT(Parse(WithChecks(R"([{"id":"a b","type":"tcp"}])")).status(),
              StatusIs(kInvalid, HasSubstr("check id may contain only")));
}

TEST(CheckStates, CarryOverOnlyForTheSameSpec) {
  Instance before;
  before.ttl_seconds = 30;
  Check a;
  a.id = "a";
  a.type = CheckType::kTcp;
  a.status = Health::kPassing;
  a.output = "TCP connect: ok";
  Check b = a;
  b.id = "b";
  before.checks = {a, b};

  Instance next = before;
  next.checks[1].interval = 1s;  // b changes its spec
  Check ttl;
  ttl.id = "lease";
  ttl.type = CheckType::kTtl;
  next.checks.push_back(ttl);
  next.AdoptCheckStates(&before);
  EXPECT_EQ(next.checks[0].status, Health::kPassing);
  EXPECT_EQ(next.checks[0].output, "TCP connect: ok");
  EXPECT_EQ(next.checks[1].status, Health::kCritical);
  EXPECT_EQ(next.checks[1].output, "");
  EXPECT_EQ(next.checks[2].status, Health::kPassing);
  EXPECT_EQ(next.health, Health::kCritical);
  EXPECT_TRUE(next.SameSpec(next));
  EXPECT_FALSE(next.SameSpec(before));

  Instance fresh = before;
  fresh.AdoptCheckStates(nullptr);
  EXPECT_EQ(fresh.health, Health::kCritical);
  Instance lease_only;
  lease_only.checks = {ttl};
  lease_only.AdoptCheckStates(nullptr);
  EXPECT_EQ(lease_only.health, Health::kPassing);
}

}  // namespace
}  // namespace muster
