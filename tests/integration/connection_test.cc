// Connection handling: idle and slow clients are timed out without holding a
// thread, keep-alive reuses one connection, and many idle watchers do not
// stop others from being served.

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>

#include <gtest/gtest.h>

#include "integration/musterd_fixture.h"
#include "support/raw_connection.h"

namespace muster::testing {
namespace {

using std::chrono::milliseconds;

class ConnectionTest : public MusterdTest {
 protected:
  std::vector<std::string> MusterdArgs() const override {
    return {"--idle-timeout", "500ms", "--threads", "1"};
  }
};

// A client that connects and sends nothing is disconnected after --idle-timeout.
TEST_F(ConnectionTest, IdleClientIsDisconnected) {
  RawConnection idle(musterd_.port());
  ASSERT_TRUE(idle.connected());
  EXPECT_TRUE(idle.ClosedWithin(milliseconds(3000)));
}

// A client that sends half a request and stalls is disconnected too.
TEST_F(ConnectionTest, SlowClientIsDisconnected) {
  RawConnection slow(musterd_.port());
  ASSERT_TRUE(slow.connected());
  ASSERT_TRUE(slow.Send("PUT /api/v1/services/a/instances/b HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"add"));
  EXPECT_TRUE(slow.ClosedWithin(milliseconds(3000)));
  EXPECT_TRUE(List("a").instances.empty());
}

// Stalled clients hold no thread: with one I/O thread and many stalled
// connections, a well-behaved client is still answered.
TEST_F(ConnectionTest, StalledClientsDoNotBlockOthers) {
  std::vector<std::unique_ptr<RawConnection>> stalled;
  for (int i = 0; i < 50; ++i) {
    stalled.push_back(std::make_unique<RawConnection>(musterd_.port()));
    ASSERT_TRUE(stalled.back()->connected());
    ASSERT_TRUE(stalled.back()->Send("GET /healthz HTTP/1.1\r\nHo"));
  }
  wire::HttpResponse r = Must(client().Put(InstancePath("orders", "o1", ""),
                                             R"({"address":"127.0.0.1:9000"})", milliseconds(2000)));
  EXPECT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(List("orders").instances.size(), 1u);
}

// A keep-alive client is served many requests over one connection, and the
// server closes it only when the client asks.
TEST_F(ConnectionTest, KeepAliveServesManyRequests) {
  RawConnection conn(musterd_.port());
  ASSERT_TRUE(conn.connected());
  std::string two = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  ASSERT_TRUE(conn.Send(two));
  EXPECT_TRUE(conn.ClosedWithin(milliseconds(2000)));
  EXPECT_EQ(CountOf(conn.received(), "HTTP/1.1 200 OK"), 2u) << conn.received();
}

// A normal client's requests, each on a connection of its own, with their
// latencies (sorted) and how many failed.
struct ClientRun {
  std::vector<double> latencies_ms;
  int failures = 0;
  std::string first_failure;

  double Percentile(double p) const {
    if (latencies_ms.empty()) return 0;
    return latencies_ms[std::min(latencies_ms.size() - 1, static_cast<size_t>(p * latencies_ms.size()))];
  }
};

// How long a normal client waits for each answer: 2 s, or ten times that
// in a sanitizer build, where musterd runs many times slower (the sanitizer
// runs look for races and memory errors, not timings).
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr milliseconds kClientTimeout{20000};
#else
constexpr milliseconds kClientTimeout{2000};
#endif

ClientRun RunClient(const std::string& address, int requests) {
  ClientRun run;
  for (int i = 0; i < requests; ++i) {
    wire::HttpClient fresh(address);
    const auto start = std::chrono::steady_clock::now();
    auto r = fresh.Get(wire::ServicesPath(), kClientTimeout);
    const auto took = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
    if (!r.ok() || r->status != 200) {
      if (run.failures++ == 0) run.first_failure = r.ok() ? r->body : r.status().ToString();
      continue;
    }
    run.latencies_ms.push_back(took.count());
  }
  std::sort(run.latencies_ms.begin(), run.latencies_ms.end());
  return run;
}

// Runs the normal client during `attack`, expects every request answered,
// and prints the latencies.
void ExpectServedDuring(const std::string& attack, const std::string& address, int requests) {
  ClientRun run = RunClient(address, requests);
  EXPECT_EQ(run.failures, 0) << run.first_failure;
  std::cout << "[ measured ] " << attack << ": " << requests << " requests on new connections, p50 "
            << run.Percentile(0.5) << " ms, p99 " << run.Percentile(0.99) << " ms\n";
}

// /healthz's "connections", and the body it came in for failure messages.
std::pair<boost::json::object, std::string> ConnectionStats(const std::string& address) {
  wire::HttpResponse health = Must(wire::HttpClient(address).Get("/healthz"));
  const boost::json::value v = JsonOf(health);
  if (!v.is_object() || !v.as_object().contains("connections")) return {{}, health.body};
  return {v.as_object().at("connections").as_object(), health.body};
}

// Connections that never send a request (or only half a header) and stay.
std::vector<std::unique_ptr<RawConnection>> Flood(uint16_t port, int count) {
  std::vector<std::unique_ptr<RawConnection>> flood;
  for (int i = 0; i < count; ++i) {
    flood.push_back(std::make_unique<RawConnection>(port));
    if (i % 2 == 1) flood.back()->Send("GET /healthz HTTP/1.1\r\nHo");
  }
  return flood;
}

class ConnectionLimitTest : public MusterdTest {
 protected:
  std::vector<std::string> MusterdArgs() const override {
    return {"--max-connections", "64", "--threads", "2"};
  }
};

// Over --max-connections, the idlest connections are closed to make room:
// a flood of idle and stalled connections does not keep a client from
// being answered, and musterd holds no more than its bound.
TEST_F(ConnectionLimitTest, IdleFloodDoesNotStarveClients) {
  auto flood = Flood(musterd_.port(), 600);
  ExpectServedDuring("600 idle connections, --max-connections 64", musterd_.address(), 200);
  const auto [c, body] = ConnectionStats(musterd_.address());
  EXPECT_LE(U64(c.at("open")), 64u) << body;
  EXPECT_EQ(U64(c.at("max")), 64u) << body;
  EXPECT_GE(U64(c.at("shed")), 600u - 64u) << body;
  // The flood's connections were closed, the idlest (oldest) first.
  EXPECT_TRUE(flood.front()->ClosedWithin(milliseconds(2000)));
}

class ConnectionLimitWatchTest : public MusterdTest {
 protected:
  // Quick keep-alives, so that a watch whose client went away is noticed
  // (by a failed write) soon.
  std::vector<std::string> MusterdArgs() const override {
    return {"--max-connections", "64", "--max-connections-per-client", "64", "--watch-keepalive", "100ms"};
  }
};

// Connections that stream a watch are never shed; when every connection
// within the bound streams, a new one is answered 503 and closed.
TEST_F(ConnectionLimitWatchTest, BusyConnectionsAreNotShedAndNewOnesRefused) {
  std::vector<std::unique_ptr<wire::SseStream>> watches;
  for (int i = 0; i < 64; ++i) {
    watches.push_back(Watch(wire::WatchTarget("", {"orders"})));
    ASSERT_NE(watches.back(), nullptr);
  }
  RawConnection extra(musterd_.port());
  ASSERT_TRUE(extra.Send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  EXPECT_TRUE(extra.ClosedWithin(milliseconds(3000)));
  EXPECT_THAT(extra.received(), ::testing::HasSubstr("503 Service Unavailable")) << extra.received();
  EXPECT_THAT(extra.received(), ::testing::HasSubstr("--max-connections"));
  // Every watch still gets its events.
  watches.pop_back();  // room for the register below, once musterd sees it gone
  ASSERT_TRUE(WaitFor(
      [&] {
        auto r = wire::HttpClient(musterd_.address())
                     .Put(InstancePath("orders", "o1"), RegisterBody("127.0.0.1:9000"));
        return r.ok() && r->status == 201;
      },
      milliseconds(3000)));
  for (auto& w : watches) {
    auto event = NextEvent(*w, milliseconds(3000));
    ASSERT_TRUE(event.has_value());
    EXPECT_EQ(event->id, "o1");
  }
}

class PerClientLimitTest : public MusterdTest {
 protected:
  std::vector<std::string> MusterdArgs() const override {
    return {"--max-connections", "64", "--max-connections-per-client", "16"};
  }
};

// One client address holds at most --max-connections-per-client: when all
// of its connections stream watches, its next is refused, and another
// address is still served.
TEST_F(PerClientLimitTest, OneAddressCannotTakeEveryConnection) {
  const std::string watch = "GET /api/v1/watch HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  std::vector<std::unique_ptr<RawConnection>> watches;
  for (int i = 0; i < 16; ++i) {
    watches.push_back(std::make_unique<RawConnection>(musterd_.port(), "127.0.0.2"));
    ASSERT_TRUE(watches.back()->connected());
    ASSERT_TRUE(watches.back()->Send(watch));
    ASSERT_TRUE(watches.back()->ReceivedWithin("text/event-stream", milliseconds(3000)));
  }
  RawConnection over(musterd_.port(), "127.0.0.2");
  ASSERT_TRUE(over.Send(watch));
  EXPECT_TRUE(over.ClosedWithin(milliseconds(3000)));
  EXPECT_THAT(over.received(), ::testing::HasSubstr("503 Service Unavailable")) << over.received();
  // 127.0.0.1 is another client.
  EXPECT_EQ(Must(wire::HttpClient(musterd_.address()).Get("/healthz")).status, 200);
  const auto [c, body] = ConnectionStats(musterd_.address());
  EXPECT_EQ(U64(c.at("refused")), 1u) << body;
}

// The soft and hard open-file limits of a process, from /proc.
std::pair<std::string, std::string> OpenFileLimits(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/limits");
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with("Max open files")) continue;
    std::istringstream fields(line.substr(14));
    std::string soft, hard;
    fields >> soft >> hard;
    return {soft, hard};
  }
  return {};
}

// musterd raises its soft open-file limit to the hard one at start, and
// draws its default connection bound from it.
TEST(OpenFileLimitTest, SoftLimitIsRaisedAndBoundsConnections) {
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  if (saved.rlim_max < 1024 || saved.rlim_max == RLIM_INFINITY) GTEST_SKIP() << "hard open-file limit " << saved.rlim_max;
  MusterdProcess musterd(MUSTERD_PATH);
  {
    // The child inherits a low soft limit (lowering and restoring the soft
    // limit needs no privilege).
    rlimit lowered{256, saved.rlim_max};
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);
    absl::Status started = musterd.Start();
    setrlimit(RLIMIT_NOFILE, &saved);
    ASSERT_TRUE(started.ok()) << started;
  }
  const std::string hard = std::to_string(saved.rlim_max);
  EXPECT_EQ(OpenFileLimits(musterd.pid()), (std::pair<std::string, std::string>{hard, hard})) << musterd.Logs();
  // The limit less a quarter for the store, probes and webhooks (256..4096).
  const uint64_t reserve = std::clamp<uint64_t>(saved.rlim_max / 4, 256, 4096);
  const auto [c, body] = ConnectionStats(musterd.address());
  EXPECT_EQ(U64(c.at("max")), saved.rlim_max - reserve) << body;
}

class OpenFilesRunOutTest : public MusterdTest {
 protected:
  std::vector<std::string> MusterdArgs() const override { return {"--max-connections", "100000"}; }
};

// The issue's case: the process runs out of descriptors below its
// connection bound (here: the bound set too high, then the limit lowered
// under it to 1024), and 3,500 idle connections arrive. Accept fails with
// EMFILE; musterd sheds the idlest connection and goes on, and a normal
// client keeps being answered.
TEST_F(OpenFilesRunOutTest, IdleConnectionsAreShedWhenDescriptorsRunOut) {
#if defined(__SANITIZE_ADDRESS__)
  // UBSan's vptr check probes memory through a pipe of its own; a process
  // with no descriptor left gets "object has invalid vptr" for sound objects
  // and halts (and LeakSanitizer cannot start at exit). Running out of
  // descriptors is this test's point, so it runs in the plain and TSan builds.
  GTEST_SKIP() << "UBSan reports false vptr errors in a process out of descriptors";
#endif
  const rlimit low{1024, 1024};
  ASSERT_EQ(prlimit(musterd_.pid(), RLIMIT_NOFILE, &low, nullptr), 0);
  auto flood = Flood(musterd_.port(), 3500);
  ExpectServedDuring("3500 idle connections, open-file limit 1024", musterd_.address(), 100);
  const auto [c, body] = ConnectionStats(musterd_.address());
  EXPECT_GT(U64(c.at("shed")), 0u) << body;
}

}  // namespace
}  // namespace muster::testing
