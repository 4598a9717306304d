// The TCP probe against real loopback ports: one that listens, one that was
// closed, and one whose accept queue is full (a connect that hangs).
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/strings.h"
#include "server/async_util.h"
#include "server/health/probe.h"
#include "unit/health/probe_test_support.h"
#include "support/status_matchers.h"

namespace muster {
namespace {

using tcp = asio::ip::tcp;
using std::chrono::milliseconds;
using ::testing::HasSubstr;
using testing::StatusIs;

using probe_test::Describe;
using probe_test::IoThreads;
using probe_test::kWait;
using probe_test::PendingRun;

Check TcpCheck(std::string target) {
  Check check;
  check.id = "port";
  check.type = CheckType::kTcp;
  check.target = std::move(target);
  return check;
}

class TcpProbeTest : public ::testing::Test {
 protected:
  // A listening socket on 127.0.0.1 (never accepting: the kernel completes
  // the handshake on its own).
  std::optional<tcp::acceptor> Listen(uint16_t port = 0, int backlog = 16,
                                      const char* address = "127.0.0.1") {
    tcp::acceptor acceptor(ioc_);
    boost::system::error_code ec;
    tcp::endpoint endpoint(asio::ip::make_address(address), port);
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(backlog, ec);
    if (ec) return std::nullopt;
    return acceptor;
  }

  std::shared_ptr<Probe> Make(const Check& check) {
    auto probe = MakeTcpProbe(check, instance_, ProbeEnvironment{io_.executor(), false});
    EXPECT_TRUE(probe.ok()) << probe.status();
    return probe.ok() ? *probe : nullptr;
  }

  std::optional<ProbeResult> RunOnce(Probe& probe, milliseconds timeout = milliseconds(5000)) {
    return PendingRun(probe, timeout).Wait();
  }

  // A listener whose accept queue is full, so that one more connect hangs
  // (Linux drops the SYN while the queue is full).
  void FillAcceptQueue(tcp::acceptor& listener) {
    const auto endpoint = listener.local_endpoint();
    for (int i = 0; i < 8; ++i) {
      // Raw non-blocking connects: they complete or stay in progress, and
      // never wait (Asio's connect would).
      const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      ASSERT_GE(fd, 0);
      fillers_.push_back(fd);
      ::connect(fd, endpoint.data(), static_cast<socklen_t>(endpoint.size()));
    }
  }
  void TearDown() override {
    for (int fd : fillers_) close(fd);
  }

  IoThreads io_;
  asio::io_context ioc_;  // for the listeners; never run
  std::vector<int> fillers_;  // sockets stuck in a full accept queue
  Instance instance_;
};

// A port that listens is passing; once closed it is critical (refused);
// listening again, passing again. The empty target is the instance's address.
TEST_F(TcpProbeTest, FollowsThePort) {
  auto listener = Listen();
  ASSERT_TRUE(listener);
  const uint16_t port = listener->local_endpoint().port();
  instance_.address = StrCat("127.0.0.1:", port);
  auto probe = Make(TcpCheck(""));
  ASSERT_NE(probe, nullptr);
  EXPECT_EQ(Describe(RunOnce(*probe)), StrCat("passing: TCP connect to 127.0.0.1:", port, ": ok"));

  listener->close();
  auto result = RunOnce(*probe);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, Health::kCritical);
  EXPECT_EQ(result->output, StrCat("TCP connect to 127.0.0.1:", port, ": Connection refused"));

  listener = Listen(port);
  ASSERT_TRUE(listener) << "port " << port << " was taken meanwhile";
  EXPECT_EQ(Describe(RunOnce(*probe)), StrCat("passing: TCP connect to 127.0.0.1:", port, ": ok"));
}

// An explicit target wins over the instance's address; a host name is
// resolved; an IPv6 literal works.
TEST_F(TcpProbeTest, TargetsByNameAndIpv6) {
  auto listener = Listen();
  ASSERT_TRUE(listener);
  const uint16_t port = listener->local_endpoint().port();
  instance_.address = "127.0.0.1:1";
  auto by_name = Make(TcpCheck(StrCat("localhost:", port)));
  ASSERT_NE(by_name, nullptr);
  EXPECT_EQ(Describe(RunOnce(*by_name)), StrCat("passing: TCP connect to localhost:", port, ": ok"));

  auto v6 = Listen(0, 16, "::1");
  if (!v6) GTEST_SKIP() << "no IPv6 loopback here";
  const uint16_t v6_port = v6->local_endpoint().port();
  auto probe = Make(TcpCheck(StrCat("[::1]:", v6_port)));
  ASSERT_NE(probe, nullptr);
  EXPECT_EQ(Describe(RunOnce(*probe)), StrCat("passing: TCP connect to [::1]:", v6_port, ": ok"));
}

// A connect that does not complete within the timeout is critical.
TEST_F(TcpProbeTest, HangingConnectTimesOut) {
  auto listener = Listen(0, 0);
  ASSERT_TRUE(listener);
  FillAcceptQueue(*listener);
  const uint16_t port = listener->local_endpoint().port();
  auto probe = Make(TcpCheck(StrCat("127.0.0.1:", port)));
  ASSERT_NE(probe, nullptr);
  auto result = RunOnce(*probe, milliseconds(300));
  ASSERT_TRUE(result);
  EXPECT_EQ(Describe(result),
            StrCat("critical: timed out after 300ms (TCP connect to 127.0.0.1:", port, ")"));
}

// Cancel ends a hanging connect long before its timeout, and later runs at
// once.
TEST_F(TcpProbeTest, CancelEndsTheRunInFlight) {
  auto listener = Listen(0, 0);
  ASSERT_TRUE(listener);
  FillAcceptQueue(*listener);
  auto probe = Make(TcpCheck(StrCat("127.0.0.1:", listener->local_endpoint().port())));
  ASSERT_NE(probe, nullptr);
  PendingRun run(*probe, std::chrono::minutes(5));
  probe->Cancel();
  EXPECT_EQ(Describe(run.Wait()), "critical: cancelled");
  EXPECT_EQ(Describe(RunOnce(*probe, std::chrono::minutes(5))), "critical: cancelled");
}

// Targets that are not host:port.
TEST_F(TcpProbeTest, RejectsBadTargets) {
  const ProbeEnvironment env{io_.executor(), false};
  instance_.address = "127.0.0.1:80";
  for (const char* target : {"127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", ":80", "[::1:80"}) {
    EXPECT_THAT(MakeTcpProbe(TcpCheck(target), instance_, env),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("check \"port\"")))
        << target;
  }
}

}  // namespace
}  // namespace muster
