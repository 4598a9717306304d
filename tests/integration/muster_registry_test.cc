// The musterd backend (NewMusterRegistry) against the conformance suite on a
// real musterd, plus what only a remote backend has to survive: dead
// addresses, deadlines, a musterd restart and a watch history that moved on.
//
// Outages are staged with a small TCP proxy between the registry and musterd:
// the registry keeps one address while musterd restarts on a new port, and
// the proxy can cut every connection and refuse new ones for a while.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "integration/musterd_fixture.h"
#include "muster/registry.h"
#include "support/musterd_process.h"
#include "support/status_matchers.h"
#include "unit/registry/registry_conformance.h"

namespace muster::testing {
namespace {

using ::testing::_;
using ::testing::AnyOf;
using ::testing::ElementsAre;
using std::chrono::milliseconds;

constexpr milliseconds kWait{15000};

// ---------------------------------------------------------------------------
// The conformance suite on a real musterd.

class MusterdHarness final : public RegistryHarness {
 public:
  MusterdHarness() : musterd_(MUSTERD_PATH) {}
  absl::Status SetUp() override { return musterd_.Start(); }
  std::unique_ptr<Registry> NewRegistry() override {
    MusterRegistryOptions options;
    options.addresses = {musterd_.address()};
    auto registry = NewMusterRegistry(options);
    EXPECT_TRUE(registry.ok()) << registry.status();
    return registry.ok() ? *std::move(registry) : nullptr;
  }
  std::string Diagnostics() const override {
    return "---- musterd output ----\n" + musterd_.Logs() + "---- end of musterd output ----";
  }

 private:
  MusterdProcess musterd_;
};

INSTANTIATE_TEST_SUITE_P(Musterd, RegistryConformanceTest,
                         ::testing::Values(RegistryBackend{
                             "musterd", [] { return std::make_unique<MusterdHarness>(); }}),
                         BackendName);

// ---------------------------------------------------------------------------
// Sockets for staging failures.

// Binds a TCP socket to 127.0.0.1 on a free port; -1 on failure.
int BindLoopback(uint16_t* port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return -1;
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

// An address nothing listens on: connections are refused.
std::string DeadAddress() {
  uint16_t port = 0;
  int fd = BindLoopback(&port);
  EXPECT_GE(fd, 0) << std::strerror(errno);
  if (fd >= 0) close(fd);
  return "127.0.0.1:" + std::to_string(port);
}

// A listener that never accepts: connections complete (in the backlog) but no
// answer ever comes.
class SilentListener {
 public:
  SilentListener() {
    uint16_t port = 0;
    fd_ = BindLoopback(&port);
    EXPECT_GE(fd_, 0);
    EXPECT_EQ(listen(fd_, 64), 0) << std::strerror(errno);
    address_ = "127.0.0.1:" + std::to_string(port);
  }
  ~SilentListener() {
    if (fd_ >= 0) close(fd_);
  }
  const std::string& address() const { return address_; }

 private:
  int fd_ = -1;
  std::string address_;
};

// Forwards TCP connections from 127.0.0.1:PORT to an upstream host:port that
// may change, and can cut every connection and refuse new ones while blocked.
class TcpProxy {
 public:
  explicit TcpProxy(std::string upstream) : upstream_(std::move(upstream)) {
    uint16_t port = 0;
    listen_fd_ = BindLoopback(&port);
    EXPECT_GE(listen_fd_, 0);
    EXPECT_EQ(listen(listen_fd_, 64), 0) << std::strerror(errno);
    address_ = "127.0.0.1:" + std::to_string(port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }

  ~TcpProxy() {
    stop_ = true;
    acceptor_.join();
    {
      std::lock_guard lock(mu_);
      CutLocked();
    }
    std::vector<std::thread> pumps;
    {
      std::lock_guard lock(mu_);
      pumps.swap(pumps_);
    }
    for (auto& t : pumps) t.join();
    close(listen_fd_);
  }

  const std::string& address() const { return address_; }

  void SetUpstream(std::string upstream) {
    std::lock_guard lock(mu_);
    upstream_ = std::move(upstream);
  }

  // While blocked, open connections are cut and new ones closed at once.
  void SetBlocked(bool blocked) {
    std::lock_guard lock(mu_);
    blocked_ = blocked;
    if (blocked) CutLocked();
  }

 private:
  void CutLocked() {
    for (int fd : open_fds_) shutdown(fd, SHUT_RDWR);  // the pump closes them
  }

  void AcceptLoop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      std::lock_guard lock(mu_);
      if (blocked_) {
        close(fd);
        continue;
      }
      pumps_.emplace_back([this, fd, upstream = upstream_] { Pump(fd, upstream); });
    }
  }

  static int ConnectTo(const std::string& address) {
    size_t colon = address.rfind(':');
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
    inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      close(fd);
      return -1;
    }
    return fd;
  }

  void Pump(int client, const std::string& upstream) {
    int server = ConnectTo(upstream);
    if (server < 0) {
      close(client);
      return;
    }
    {
      std::lock_guard lock(mu_);
      if (blocked_ || stop_) {
        close(client);
        close(server);
        return;
      }
      open_fds_.insert(client);
      open_fds_.insert(server);
    }
    char buf[16384];
    bool open = true;
    while (open && !stop_) {
      pollfd p[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
      if (poll(p, 2, 50) <= 0) continue;
      for (int i = 0; i < 2 && open; ++i) {
        if (p[i].revents == 0) continue;
        ssize_t n = read(p[i].fd, buf, sizeof buf);
        if (n <= 0) {
          open = false;
          break;
        }
        int to = i == 0 ? server : client;
        for (ssize_t sent = 0; sent < n;) {
          ssize_t w = send(to, buf + sent, static_cast<size_t>(n - sent), MSG_NOSIGNAL);
          if (w <= 0) {
            open = false;
            break;
          }
          sent += w;
        }
      }
    }
    {
      std::lock_guard lock(mu_);
      open_fds_.erase(client);
      open_fds_.erase(server);
    }
    close(client);
    close(server);
  }

  int listen_fd_ = -1;
  std::string address_;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;

  std::mutex mu_;
  std::string upstream_;       // guarded by mu_
  bool blocked_ = false;       // guarded by mu_
  std::set<int> open_fds_;     // guarded by mu_
  std::vector<std::thread> pumps_;  // guarded by mu_
};

// ---------------------------------------------------------------------------
// What only the musterd backend has to do.

// Retry settings of a test registry: attempts, initial and maximal backoff.
struct Retry {
  int max_attempts = 3;
  milliseconds initial_backoff{50};
  milliseconds max_backoff{2000};
};

class MusterRegistryTest : public MusterdTest {
 protected:
  void TearDown() override {
    for (auto& r : registries_) r->Close();
    MusterdTest::TearDown();
  }

  Registry& Make(std::vector<std::string> addresses, Retry retry = Retry()) {
    MusterRegistryOptions options;
    options.addresses = std::move(addresses);
    options.max_attempts = retry.max_attempts;
    options.initial_backoff = retry.initial_backoff;
    options.max_backoff = retry.max_backoff;
    auto registry = NewMusterRegistry(options);
    EXPECT_TRUE(registry.ok()) << registry.status();
    registries_.push_back(*std::move(registry));
    return *registries_.back();
  }

  UpdateRecorder& NewRecorder() {
    recorders_.push_back(std::make_unique<UpdateRecorder>());
    return *recorders_.back();
  }

  // Waits for the first update with a non-OK status, after index `from`;
  // returns its index or -1.
  static int WaitForFailure(UpdateRecorder& recorder, size_t from = 0) {
    int found = -1;
    recorder.WaitUntil(
        [&](const std::vector<WatchUpdate>& updates) {
          for (size_t i = from; i < updates.size(); ++i) {
            if (!updates[i].status.ok()) {
              found = static_cast<int>(i);
              return true;
            }
          }
          return false;
        },
        kWait);
    return found;
  }

  // Recorders outlive the registries (declared first).
  std::vector<std::unique_ptr<UpdateRecorder>> recorders_;
  std::vector<std::unique_ptr<Registry>> registries_;
  CallOptions call_;
};

// A dead first address does not fail calls: they go to the second.
TEST_F(MusterRegistryTest, FailsOverWhenFirstAddressIsDead) {
  Registry& registry = Make({DeadAddress(), musterd_.address()});
  auto stored = registry.Register(TestInstance("a"), call_);
  ASSERT_THAT(stored, IsOk());
  EXPECT_THAT(registry.UpdateService(KeyOf(*stored), call_), IsOk());
  auto list = registry.ListServices(Query("svc"), call_);
  ASSERT_THAT(list, IsOk());
  EXPECT_THAT(IdsOf(list->instances), ElementsAre("a"));

  UpdateRecorder& recorder = NewRecorder();
  auto id = registry.Subscribe(Query("svc"), recorder.Callback());
  ASSERT_THAT(id, IsOk());
  ASSERT_TRUE(recorder.WaitForCount(1, kWait));
  ASSERT_THAT(registry.Deregister(KeyOf(*stored), call_), IsOk());
  EXPECT_TRUE(recorder.WaitForChange(
      [](const Change& c) { return c.type == ChangeType::kDeregistered; }, kWait));
  for (const WatchUpdate& u : recorder.updates()) EXPECT_THAT(u.status, IsOk());
  registry.Unsubscribe(*id);
  // Errors from the live node are final, not retried into something else.
  EXPECT_THAT(registry.Deregister(KeyOf(*stored), call_),
              StatusIs(absl::StatusCode::kNotFound, _));
}

// With no reachable address a call gives up by its timeout.
TEST_F(MusterRegistryTest, CallRespectsDeadlineWhenUnreachable) {
  Registry& registry = Make({DeadAddress()}, Retry{1000, milliseconds(10), milliseconds(50)});
  const auto start = std::chrono::steady_clock::now();
  auto list = registry.ListServices(Query("svc"), {.timeout = milliseconds(300)});
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_THAT(list, AnyOf(StatusIs(absl::StatusCode::kUnavailable, _),
                          StatusIs(absl::StatusCode::kDeadlineExceeded, _)));
  EXPECT_LT(elapsed, milliseconds(300 + 300));
}

// A server that never answers costs the call its timeout, no more.
TEST_F(MusterRegistryTest, CallRespectsDeadlineWhenServerHangs) {
  SilentListener silent;
  Registry& registry = Make({silent.address()});
  const auto start = std::chrono::steady_clock::now();
  auto stored = registry.Register(TestInstance("a"), {.timeout = milliseconds(500)});
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_THAT(stored, StatusIs(absl::StatusCode::kDeadlineExceeded, _));
  EXPECT_LT(elapsed, milliseconds(500 + 300));
}

// A hung first node does not eat the whole budget: the second still answers.
TEST_F(MusterRegistryTest, FailsOverWhenFirstAddressHangs) {
  SilentListener silent;
  Registry& registry = Make({silent.address(), musterd_.address()});
  EXPECT_THAT(registry.Register(TestInstance("a"), {.timeout = milliseconds(3000)}), IsOk());
}

// A subscription with no reachable registry reports Unavailable once, and
// Unsubscribe still returns promptly.
TEST_F(MusterRegistryTest, SubscriptionReportsUnreachableRegistryOnce) {
  Registry& registry = Make({DeadAddress()}, Retry{3, milliseconds(10), milliseconds(20)});
  UpdateRecorder& recorder = NewRecorder();
  auto id = registry.Subscribe(Query("svc"), recorder.Callback());
  ASSERT_THAT(id, IsOk());
  ASSERT_TRUE(recorder.WaitForCount(1, kWait));
  EXPECT_THAT(recorder.updates()[0].status, StatusIs(absl::StatusCode::kUnavailable, _));
  // Several retry rounds pass (each a refused connect and a short backoff)
  // without another update; time passing is the behaviour here.
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(recorder.updates().size(), 1u);
  const auto start = std::chrono::steady_clock::now();
  registry.Unsubscribe(*id);
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(1000));
}

// A subscription rides out a musterd restart: one Unavailable update, then
// an OK update once reachable, then the changes made after the restart.
TEST_F(MusterRegistryTest, SubscriptionSurvivesMusterdRestart) {
  TcpProxy proxy(musterd_.address());
  Registry& registry = Make({proxy.address()}, Retry{3, milliseconds(20), milliseconds(200)});
  ASSERT_THAT(registry.Register(TestInstance("a"), call_), IsOk());
  UpdateRecorder& recorder = NewRecorder();
  ASSERT_THAT(registry.Subscribe(Query("svc"), recorder.Callback()), IsOk());
  ASSERT_TRUE(recorder.WaitForCount(1, kWait));
  ASSERT_TRUE(recorder.updates()[0].snapshot);

  musterd_.Kill9();
  int failure = WaitForFailure(recorder);
  ASSERT_GE(failure, 0) << "no Unavailable update after musterd died";
  EXPECT_THAT(recorder.updates()[failure].status, StatusIs(absl::StatusCode::kUnavailable, _));

  ASSERT_THAT(musterd_.Restart(), IsOk());
  proxy.SetUpstream(musterd_.address());
  Reconnect();
  ASSERT_TRUE(recorder.WaitUntil(
      [&](const std::vector<WatchUpdate>& updates) {
        return updates.size() > static_cast<size_t>(failure) + 1 && updates.back().status.ok();
      },
      kWait))
      << "no OK update after the restart";

  ASSERT_THAT(registry.Register(TestInstance("b"), call_), IsOk());
  ASSERT_TRUE(recorder.WaitForChange(
      [](const Change& c) { return c.type == ChangeType::kRegistered && c.instance.id == "b"; },
      kWait));
  std::vector<WatchUpdate> updates = recorder.updates();
  int failures = 0;
  for (const WatchUpdate& u : updates) failures += u.status.ok() ? 0 : 1;
  EXPECT_EQ(failures, 1);
  std::map<std::string, Instance> view = recorder.View();
  EXPECT_EQ(view.size(), 2u);
  EXPECT_TRUE(view.contains("a") && view.contains("b"));
}

class MusterRegistryShortHistoryTest : public MusterRegistryTest {
 protected:
  std::vector<std::string> MusterdArgs() const override { return {"--history", "2"}; }
};

// When the changes missed during an outage have left musterd's history, the
// subscription lists again and delivers a fresh snapshot.
TEST_F(MusterRegistryShortHistoryTest, SubscriptionResyncsWhenHistoryMovedOn) {
  TcpProxy proxy(musterd_.address());
  Registry& watched = Make({proxy.address()}, Retry{3, milliseconds(20), milliseconds(100)});
  Registry& direct = Make({musterd_.address()});
  UpdateRecorder& recorder = NewRecorder();
  ASSERT_THAT(watched.Subscribe(Query("svc"), recorder.Callback()), IsOk());
  ASSERT_TRUE(recorder.WaitForCount(1, kWait));

  proxy.SetBlocked(true);
  int failure = WaitForFailure(recorder);
  ASSERT_GE(failure, 0);
  for (const char* id : {"a", "b", "c", "d", "e"}) {
    ASSERT_THAT(direct.Register(TestInstance(id), call_), IsOk());
  }
  proxy.SetBlocked(false);

  ASSERT_TRUE(recorder.WaitUntil(
      [&](const std::vector<WatchUpdate>& updates) {
        for (size_t i = failure + 1; i < updates.size(); ++i) {
          if (updates[i].snapshot) return true;
        }
        return false;
      },
      kWait))
      << "no fresh snapshot after the outage";
  EXPECT_THAT(IdsOf(recorder.updates().back().instances), ElementsAre("a", "b", "c", "d", "e"));
  EXPECT_TRUE(recorder.changes().empty());  // nothing partial was delivered

  ASSERT_THAT(direct.Register(TestInstance("f"), call_), IsOk());
  ASSERT_TRUE(recorder.WaitForChange([](const Change& c) { return c.instance.id == "f"; }, kWait));
  EXPECT_EQ(recorder.View().size(), 6u);
}

class MusterRegistryLimitsTest : public MusterRegistryTest {
 protected:
  std::vector<std::string> MusterdArgs() const override {
    return {"--max-instances-per-service", "1"};
  }
};

// musterd's errors come back with their canonical codes (429: ResourceExhausted).
TEST_F(MusterRegistryLimitsTest, ServerErrorsKeepTheirCodes) {
  Registry& registry = Make({musterd_.address()});
  ASSERT_THAT(registry.Register(TestInstance("a"), call_), IsOk());
  EXPECT_THAT(registry.Register(TestInstance("b"), call_),
              StatusIs(absl::StatusCode::kResourceExhausted, _));
}

}  // namespace
}  // namespace muster::testing
