// musterd's xDS server as gRPC's own xDS client sees it: this process dials
// xds:///TARGET with Debian's libgrpc++ and a bootstrap naming one real
// musterd, and calls Greeter backends served here on 127.0.0.x. Calls follow
// the registry: spread by weight, a new instance reached, a deregistered,
// expired, critical or disabled one left alone, a restart of musterd
// survived. Raw ADS streams (the generated stub) check the protocol's edges:
// NACKs counted and logged, limits, unknown types.
//
// gRPC keeps one xDS client per process, made from the bootstrap the first
// time a channel needs it, so the suite shares one musterd whose xDS address
// never changes (a restart listens on the same one).
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "core/strings.h"
#include "core/wire/http_client.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "integration/greeter_backend.h"
#include "integration/xds_greeter.h"
#include "support/api_helpers.h"
#include "support/musterd_process.h"
#include "support/run_command.h"

namespace muster::testing {
namespace {

namespace json = boost::json;
using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;
using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

class XdsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    musterd_ = new MusterdProcess(MUSTERD_PATH);
    absl::Status started = musterd_->Start();
    ASSERT_TRUE(started.ok()) << started;
    ASSERT_FALSE(musterd_->xds_address().empty()) << musterd_->Logs();
    xds_address_ = musterd_->xds_address();
    const std::string bootstrap = XdsBootstrap(xds_address_);
    setenv("GRPC_XDS_BOOTSTRAP_CONFIG", bootstrap.c_str(), 1);
  }

  static void TearDownTestSuite() {
    delete musterd_;
    musterd_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(musterd_, nullptr);
    ASSERT_TRUE(musterd_->running());
    client_ = std::make_unique<wire::HttpClient>(musterd_->address());
  }

  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "---- musterd output ----\n" << musterd_->Logs() << "---- end ----\n";
    }
  }

  // A started backend on 127.0.0.N, N from 2 on (each test its own).
  GreeterBackend& Backend(const std::string& id) {
    const std::string host = StrCat("127.0.0.", 2 + backends_.size());
    auto& b = backends_.emplace_back(std::make_unique<GreeterBackend>(id, host));
    EXPECT_TRUE(b->Start()) << "cannot serve on " << host;
    return *b;
  }

  wire::HttpResponse Register(const std::string& service, const GreeterBackend& b,
                              json::object extra = {}, const std::string& query = "") {
    // A lease that outlives the test unless it sets one.
    if (!extra.contains("ttl_seconds")) extra["ttl_seconds"] = 600;
    return Must(client_->Put(InstancePath(service, b.id(), query), RegisterBody(b.address(), extra)));
  }

  // Register, then whether musterd stored it (200 or 201).
  bool Registered(const std::string& service, const GreeterBackend& b, json::object extra = {},
                  const std::string& query = "") {
    const wire::HttpResponse r = Register(service, b, std::move(extra), query);
    EXPECT_TRUE(r.status == 200 || r.status == 201) << r.status << " " << r.body;
    return r.status == 200 || r.status == 201;
  }

  wire::HttpResponse Deregister(const std::string& service, const std::string& id) {
    return Must(client_->Delete(InstancePath(service, id)));
  }

  json::object Xds() {
    return JsonOf(Must(client_->Get("/healthz"))).as_object().at("xds").as_object();
  }

  static MusterdProcess* musterd_;
  static std::string xds_address_;
  std::unique_ptr<wire::HttpClient> client_;
  std::vector<std::unique_ptr<GreeterBackend>> backends_;
};

MusterdProcess* XdsTest::musterd_ = nullptr;
std::string XdsTest::xds_address_;

// Weights 300 and 100: about three calls in four go to the heavy instance
// (gRPC picks a locality at random by weight; 650..850 of 1000 is over
// seven standard deviations wide).
TEST_F(XdsTest, CallsSpreadOverTheInstancesByWeight) {
  GreeterBackend& heavy = Backend("heavy");
  GreeterBackend& light = Backend("light");
  ASSERT_TRUE(Registered("weighted", heavy, {{"weight", 300}}));
  ASSERT_TRUE(Registered("weighted", light, {{"weight", 100}}));
  XdsGreeter client("weighted");
  ASSERT_TRUE(client.Reaches("heavy"));
  ASSERT_TRUE(client.Reaches("light"));
  std::map<std::string, int> spread = client.Spread(1000);
  EXPECT_EQ(spread["heavy"] + spread["light"], 1000) << ::testing::PrintToString(spread);
  EXPECT_GE(spread["heavy"], 650) << ::testing::PrintToString(spread);
  EXPECT_LE(spread["heavy"], 850) << ::testing::PrintToString(spread);
}

// A service nobody registered yet is an empty assignment, not an error the
// client gives up on: calls fail UNAVAILABLE until an instance registers,
// and then reach it.
TEST_F(XdsTest, AnUnknownServiceFailsUnavailableUntilAnInstanceRegisters) {
  XdsGreeter client("late");
  const std::string before = client.Call(milliseconds(1500));
  EXPECT_THAT(before, ::testing::StartsWith("!"));
  GreeterBackend& b = Backend("late-1");
  ASSERT_TRUE(Registered("late", b));
  EXPECT_TRUE(client.Reaches("late-1"));
}

// A registration made while the client runs receives calls, pushed.
TEST_F(XdsTest, ANewInstanceReceivesCalls) {
  GreeterBackend& first = Backend("grow-1");
  ASSERT_TRUE(Registered("grow", first));
  XdsGreeter client("grow");
  ASSERT_TRUE(client.Reaches("grow-1"));
  GreeterBackend& second = Backend("grow-2");
  ASSERT_TRUE(Registered("grow", second));
  EXPECT_TRUE(client.Reaches("grow-2"));
  EXPECT_EQ(Xds().at("nacks").as_int64(), 0);
}

// Deregistered, expired, critical and disabled instances receive no calls;
// the one left keeps answering.
TEST_F(XdsTest, InstancesThatLeaveOrFailReceiveNoCalls) {
  GreeterBackend& keep = Backend("shrink-keep");
  GreeterBackend& gone = Backend("shrink-gone");
  GreeterBackend& lapse = Backend("shrink-lapse");
  GreeterBackend& sick = Backend("shrink-sick");
  GreeterBackend& off = Backend("shrink-off");
  ASSERT_TRUE(Registered("shrink", keep));
  ASSERT_TRUE(Registered("shrink", gone));
  ASSERT_TRUE(Registered("shrink", lapse, {{"ttl_seconds", 2}}));
  json::array checks = {json::object{{"id", "app"}, {"type", "ttl"}, {"ttl", "1h"}, {"status", "passing"}}};
  ASSERT_TRUE(Registered("shrink", sick, {{"checks", checks}}));
  ASSERT_TRUE(Registered("shrink", off));
  XdsGreeter client("shrink");
  for (const char* id : {"shrink-keep", "shrink-gone", "shrink-sick", "shrink-off"}) {
    ASSERT_TRUE(client.Reaches(id)) << id;
  }

  ASSERT_EQ(Deregister("shrink", "shrink-gone").status, 200);
  EXPECT_TRUE(client.Avoids("shrink-gone"));

  wire::HttpResponse reported = Must(client_->Put(
      StrCat(InstancePath("shrink", "shrink-sick"), "/checks/app"), R"({"status":"critical"})"));
  ASSERT_EQ(reported.status, 200) << reported.body;
  EXPECT_TRUE(client.Avoids("shrink-sick"));

  ASSERT_TRUE(Registered("shrink", off, {{"status", "disabled"}}));
  EXPECT_TRUE(client.Avoids("shrink-off"));

  // No heartbeat: the 2 s lease lapses.
  EXPECT_TRUE(client.Avoids("shrink-lapse"));
  EXPECT_TRUE(WaitUntil(
      [&] { return ParseList(Must(client_->Get(ListPath("shrink")))).Find("shrink-lapse") == nullptr; },
      seconds(10)));
  EXPECT_EQ(client.Call(), "shrink-keep");
}

// xds:///NAMESPACE/SERVICE and xds:///NAMESPACE/SERVICE/VERSION name another
// namespace and one version.
TEST_F(XdsTest, TargetsNameANamespaceAndAVersion) {
  GreeterBackend& v1 = Backend("subset-v1");
  GreeterBackend& v2 = Backend("subset-v2");
  GreeterBackend& other = Backend("subset-prod");
  ASSERT_TRUE(Registered("subset", v1, {{"version", "v1"}}));
  ASSERT_TRUE(Registered("subset", v2, {{"version", "v2"}}));
  ASSERT_TRUE(Registered("subset", other, {}, "namespace=prod"));
  XdsGreeter only_v2("default/subset/v2");
  ASSERT_TRUE(only_v2.Reaches("subset-v2"));
  EXPECT_EQ(only_v2.Spread(50), (std::map<std::string, int>{{"subset-v2", 50}}));
  XdsGreeter prod("prod/subset");
  ASSERT_TRUE(prod.Reaches("subset-prod"));
  EXPECT_EQ(prod.Spread(50), (std::map<std::string, int>{{"subset-prod", 50}}));
  XdsGreeter all("subset");
  EXPECT_TRUE(all.Reaches("subset-v1"));
  EXPECT_TRUE(all.Reaches("subset-v2"));
}

// A raw ADS stream: the EDS answer for a followed service, then a NACK of it,
// which musterd counts and logs with the client's reason.
TEST_F(XdsTest, ANackIsCountedAndLogged) {
  GreeterBackend& b = Backend("nack-1");
  ASSERT_TRUE(Registered("nacked", b));
  const int64_t nacks_before = Xds().at("nacks").as_int64();

  RawAdsStream stream(xds_address_);
  ASSERT_TRUE(stream.FollowEndpoints({"nacked"}));
  DiscoveryResponse response;
  ASSERT_TRUE(stream.Read(&response));
  EXPECT_EQ(response.type_url(), kEdsType);
  std::vector<RawAdsStream::Assignment> assignments = RawAdsStream::Assignments(response);
  ASSERT_EQ(assignments.size(), 1u);
  EXPECT_EQ(assignments[0].cluster_name(), "nacked");
  ASSERT_EQ(assignments[0].endpoints_size(), 1);
  EXPECT_EQ(assignments[0].endpoints(0).locality().sub_zone(), "nack-1");

  DiscoveryRequest nack;
  nack.set_type_url(kEdsType);
  nack.add_resource_names("nacked");
  nack.set_response_nonce(response.nonce());
  nack.mutable_error_detail()->set_code(3);
  nack.mutable_error_detail()->set_message("rejected by the xds test");
  ASSERT_TRUE(stream.Write(nack));
  EXPECT_TRUE(WaitUntil([&] { return Xds().at("nacks").as_int64() == nacks_before + 1; }, seconds(5)));
  EXPECT_TRUE(WaitUntil([&] { return musterd_->Logs().find("rejected by the xds test") != std::string::npos; },
                      seconds(5)));
  EXPECT_THAT(musterd_->Logs(), HasSubstr("xDS NACK"));

  // The NACK is not answered again; a change of the service still is.
  GreeterBackend& c = Backend("nack-2");
  ASSERT_TRUE(Registered("nacked", c));
  ASSERT_TRUE(stream.Read(&response));
  assignments = RawAdsStream::Assignments(response);
  ASSERT_EQ(assignments.size(), 1u);
  EXPECT_EQ(assignments[0].endpoints_size(), 2);
}

// Bad input on a stream: an unknown type is ignored (the stream goes on); a
// request naming more resources than a stream may follow ends the stream
// with RESOURCE_EXHAUSTED and a message saying so; a malformed name is left
// out of the answer.
TEST_F(XdsTest, BadRequestsAreRefusedClearly) {
  RawAdsStream stream(xds_address_);
  DiscoveryRequest unknown;
  unknown.set_type_url("type.googleapis.com/envoy.config.core.v3.Nothing");
  unknown.add_resource_names("x");
  ASSERT_TRUE(stream.Write(unknown));
  ASSERT_TRUE(stream.FollowEndpoints({"a/b/c/d", "ok-name"}));
  DiscoveryResponse response;
  ASSERT_TRUE(stream.Read(&response));
  EXPECT_EQ(response.type_url(), kEdsType);
  std::vector<RawAdsStream::Assignment> assignments = RawAdsStream::Assignments(response);
  ASSERT_EQ(assignments.size(), 1u);
  EXPECT_EQ(assignments[0].cluster_name(), "ok-name");
  EXPECT_EQ(assignments[0].endpoints_size(), 0);

  DiscoveryRequest many;
  many.set_type_url(kEdsType);
  many.set_response_nonce(response.nonce());
  for (int i = 0; i < 1025; ++i) many.add_resource_names(StrCat("svc-", i));
  ASSERT_TRUE(stream.Write(many));
  grpc::Status finished = stream.Finish();
  EXPECT_EQ(finished.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(finished.error_message(), HasSubstr("at most 1024"));
  EXPECT_THAT(musterd_->Logs(), HasSubstr("has more than three parts"));
}

// Stopped and started again on the same xDS address, musterd serves the
// clients' streams again: they reconnect, follow again, and a registration
// made after the restart reaches them.
TEST_F(XdsTest, StreamsResumeAfterARestart) {
  GreeterBackend& before = Backend("restart-1");
  ASSERT_TRUE(Registered("restarted", before, {{"ttl_seconds", 300}}));
  XdsGreeter client("restarted");
  ASSERT_TRUE(client.Reaches("restart-1"));

  ASSERT_EQ(musterd_->Terminate(), 0);
  ASSERT_TRUE(musterd_->Restart({"--xds-listen", xds_address_}).ok()) << musterd_->Logs();
  ASSERT_EQ(musterd_->xds_address(), xds_address_);
  client_ = std::make_unique<wire::HttpClient>(musterd_->address());

  GreeterBackend& after = Backend("restart-2");
  ASSERT_TRUE(Registered("restarted", after, {{"ttl_seconds", 300}}));
  EXPECT_TRUE(client.Reaches("restart-2", seconds(60)));
  EXPECT_TRUE(client.Reaches("restart-1"));
  EXPECT_GE(Xds().at("streams").as_int64(), 1);
}


// A second musterd on the xDS address the first one holds does not start
// (gRPC would bind with SO_REUSEPORT and let the two share it): exit 1,
// naming the address. A malformed address, or a stream limit of 0 in the
// config file, is a usage error (exit 2).
TEST_F(XdsTest, AnXdsAddressInUseOrMalformedStopsMusterd) {
  auto dir = MakeTempDir("muster-xds-second");
  ASSERT_TRUE(dir.ok()) << dir.status();
  CommandResult taken = RunCommand({MUSTERD_PATH, "--listen", "127.0.0.1:0", "--data-dir",
                                    *dir + "/a", "--xds-listen", xds_address_});
  EXPECT_EQ(taken.exit_code, 1) << taken;
  EXPECT_THAT(taken.err, HasSubstr(StrCat("cannot listen on ", xds_address_, " for xDS"))) << taken;

  CommandResult malformed = RunCommand({MUSTERD_PATH, "--listen", "127.0.0.1:0", "--data-dir",
                                        *dir + "/b", "--xds-listen", "127.0.0.1"});
  EXPECT_EQ(malformed.exit_code, 2) << malformed;
  EXPECT_THAT(malformed.err, HasSubstr("--xds-listen")) << malformed;

  const std::string config = *dir + "/musterd.toml";
  std::ofstream(config) << "xds_max_streams = 0\n";
  CommandResult zero = RunCommand({MUSTERD_PATH, "--listen", "127.0.0.1:0", "--data-dir",
                                   *dir + "/c", "--xds-listen", "127.0.0.1:0", "--config", config});
  EXPECT_EQ(zero.exit_code, 2) << zero;
  EXPECT_THAT(zero.err, HasSubstr("xds_max_streams")) << zero;
  std::filesystem::remove_all(*dir);
}

// Past --xds-max-streams, a new stream is refused with RESOURCE_EXHAUSTED
// saying the limit; the open one goes on being served.
TEST_F(XdsTest, StreamsPastTheLimitAreRefused) {
  MusterdProcess small(MUSTERD_PATH);
  ASSERT_TRUE(small.Start({"--xds-max-streams", "1"}).ok()) << small.Logs();
  RawAdsStream first(small.xds_address());
  ASSERT_TRUE(first.FollowEndpoints({"limited"}));
  DiscoveryResponse response;
  ASSERT_TRUE(first.Read(&response));

  RawAdsStream second(small.xds_address(), seconds(10));
  second.FollowEndpoints({"limited"});
  EXPECT_FALSE(second.Read(&response));
  grpc::Status refused = second.Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), HasSubstr("at most 1 xDS streams"));

  // The first stream is still followed: a registration reaches it.
  wire::HttpClient http(small.address());
  GreeterBackend& b = Backend("limited-1");
  ASSERT_EQ(Must(http.Put(InstancePath("limited", "limited-1"), RegisterBody(b.address()))).status, 201);
  ASSERT_TRUE(first.Read(&response));
  std::vector<RawAdsStream::Assignment> assignments = RawAdsStream::Assignments(response);
  ASSERT_EQ(assignments.size(), 1u);
  EXPECT_EQ(assignments[0].endpoints_size(), 1);
  const json::object xds = JsonOf(Must(http.Get("/healthz"))).as_object().at("xds").as_object();
  EXPECT_EQ(xds.at("streams").as_int64(), 1);
  EXPECT_EQ(xds.at("refused").as_int64(), 1);
}

}  // namespace
}  // namespace muster::testing
