// The gRPC probe against a real gRPC server on 127.0.0.1 with gRPC's own
// health service (grpc::EnableDefaultHealthCheckService), whose serving
// status the test flips; and against a port that accepts connections but
// never speaks HTTP/2 (a call that hangs).
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/strings.h"
#include "server/async_util.h"
#include "server/health/probe.h"
#include "unit/health/probe_test_support.h"
#include "support/check_targets.h"
#include "support/status_matchers.h"

namespace muster {
namespace {

using tcp = asio::ip::tcp;
using std::chrono::milliseconds;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing::StatusIs;

using probe_test::Describe;
using probe_test::IoThreads;
using probe_test::kWait;
using probe_test::PendingRun;

Check GrpcCheck(std::string target, std::string service) {
  Check check;
  check.id = "rpc";
  check.type = CheckType::kGrpc;
  check.target = std::move(target);
  check.grpc_service = std::move(service);
  return check;
}

using HealthServer = testing::GrpcHealthTarget;

class GrpcProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<HealthServer>();
    ASSERT_TRUE(server_->started());
    instance_.address = StrCat("127.0.0.1:", server_->port());
  }

  std::shared_ptr<Probe> Make(const Check& check) {
    auto probe = MakeGrpcProbe(check, instance_, ProbeEnvironment{io_.executor(), false});
    EXPECT_TRUE(probe.ok()) << probe.status();
    return probe.ok() ? *probe : nullptr;
  }

  std::optional<ProbeResult> RunOnce(Probe& probe, milliseconds timeout = milliseconds(5000)) {
    return PendingRun(probe, timeout).Wait();
  }

  IoThreads io_;
  std::unique_ptr<HealthServer> server_;
  Instance instance_;
};

// The named service's status decides, and the probe follows its flips.
TEST_F(GrpcProbeTest, FollowsServingStatus) {
  server_->SetServing("svc", true);
  auto probe = Make(GrpcCheck("", "svc"));
  ASSERT_NE(probe, nullptr);
  EXPECT_EQ(Describe(RunOnce(*probe)), "passing: SERVING");
  server_->SetServing("svc", false);
  EXPECT_EQ(Describe(RunOnce(*probe)), "critical: NOT_SERVING");
  server_->SetServing("svc", true);
  EXPECT_EQ(Describe(RunOnce(*probe)), "passing: SERVING");
}

// The empty service name asks about the whole server (serving once started).
TEST_F(GrpcProbeTest, WholeServer) {
  auto probe = Make(GrpcCheck(StrCat("127.0.0.1:", server_->port()), ""));
  ASSERT_NE(probe, nullptr);
  EXPECT_EQ(Describe(RunOnce(*probe)), "passing: SERVING");
}

// A service the server does not know: NOT_FOUND, critical.
TEST_F(GrpcProbeTest, UnknownServiceIsCritical) {
  auto probe = Make(GrpcCheck("", "nobody"));
  ASSERT_NE(probe, nullptr);
  auto result = RunOnce(*probe);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, Health::kCritical);
  EXPECT_THAT(result->output, StartsWith("NOT_FOUND: "));
  EXPECT_THAT(result->output, HasSubstr("the server does not know the service \"nobody\""));
}

// A stopped server is critical (UNAVAILABLE); once it is back on the same
// port the probe's channel reconnects within a few runs (short backoff).
TEST_F(GrpcProbeTest, StoppedServerIsCriticalAndRecovers) {
  server_->SetServing("svc", true);
  auto probe = Make(GrpcCheck("", "svc"));
  ASSERT_NE(probe, nullptr);
  EXPECT_EQ(Describe(RunOnce(*probe)), "passing: SERVING");
  const int port = server_->port();
  server_->Stop();
  auto down = RunOnce(*probe);
  ASSERT_TRUE(down);
  EXPECT_EQ(down->status, Health::kCritical);
  EXPECT_THAT(down->output, StartsWith("UNAVAILABLE: "));

  server_ = std::make_unique<HealthServer>(port);
  ASSERT_TRUE(server_->started()) << "port " << port << " was taken meanwhile";
  server_->SetServing("svc", true);
  // The channel may still be in its reconnect backoff for a run or two.
  std::optional<ProbeResult> up;
  for (int i = 0; i < 50; ++i) {
    up = RunOnce(*probe);
    if (up && up->status == Health::kPassing) break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_EQ(Describe(up), "passing: SERVING");
}

// A call that gets no answer within the timeout (a port that never speaks
// HTTP/2) is critical; Cancel ends one long before its timeout.
TEST_F(GrpcProbeTest, TimeoutAndCancel) {
  asio::io_context ioc;
  tcp::acceptor silent(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const uint16_t port = silent.local_endpoint().port();
  auto probe = Make(GrpcCheck(StrCat("127.0.0.1:", port), "svc"));
  ASSERT_NE(probe, nullptr);
  EXPECT_EQ(Describe(RunOnce(*probe, milliseconds(300))),
            StrCat("critical: timed out after 300ms (gRPC health check of 127.0.0.1:", port, ")"));

  PendingRun run(*probe, std::chrono::minutes(5));
  probe->Cancel();
  EXPECT_EQ(Describe(run.Wait()), "critical: cancelled");
  EXPECT_EQ(Describe(RunOnce(*probe, std::chrono::minutes(5))), "critical: cancelled");
}

TEST_F(GrpcProbeTest, RejectsBadTargets) {
  const ProbeEnvironment env{io_.executor(), false};
  for (const char* target : {"127.0.0.1", "127.0.0.1:0", "nohost:"}) {
    EXPECT_THAT(MakeGrpcProbe(GrpcCheck(target, ""), instance_, env),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("check \"rpc\"")))
        << target;
  }
}

}  // namespace
}  // namespace muster
