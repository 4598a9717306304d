// The musterd backend (NewMusterRegistry) against the conformance suite on a
// real musterd, plus what only a remote backend has to survive: dead
// addresses, deadlines, a musterd restart and a watch history that moved on.
//
// Outages are staged with a TcpForwarder between the registry and musterd:
// the registry keeps one address while musterd restarts on a new port, and
// the forwarder can cut every connection and refuse new ones for a while, or
// silence connections without closing them.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "integration/musterd_fixture.h"
#include "integration/tcp_forwarder.h"
#include "core/wire/paths.h"
#include "muster/registry.h"
#include "support/musterd_process.h"
#include "support/status_matchers.h"
#include "unit/registry/registry_conformance.h"

namespace muster::testing {
namespace {

using ::testing::_;
using ::testing::AnyOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
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
// Sockets for staging failures (and TcpForwarder, in tcp_forwarder.h).

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

// An HTTP server that answers each request with the next of `statuses` (the
// last one repeated), a JSON error body that names the status, and
// Connection: close; it counts the requests. For the answers a single musterd
// does not give on cue (504 and 409 come from cluster mode).
class CannedServer {
 public:
  explicit CannedServer(std::vector<int> statuses) : statuses_(std::move(statuses)) {
    uint16_t port = 0;
    fd_ = BindLoopback(&port);
    EXPECT_GE(fd_, 0) << std::strerror(errno);
    EXPECT_EQ(listen(fd_, 16), 0) << std::strerror(errno);
    address_ = "127.0.0.1:" + std::to_string(port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~CannedServer() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  const std::string& address() const { return address_; }
  int requests() const { return requests_; }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int client = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      Answer(client);
      close(client);
    }
  }

  // Reads one request (head and Content-Length body) and answers it.
  void Answer(int client) {
    std::string in;
    char buf[4096];
    auto more = [&] {
      ssize_t n = recv(client, buf, sizeof buf, 0);
      if (n > 0) in.append(buf, static_cast<size_t>(n));
      return n > 0;
    };
    size_t head_end;
    while ((head_end = in.find("\r\n\r\n")) == std::string::npos) {
      if (!more()) return;
    }
    std::string head = in.substr(0, head_end);
    std::transform(head.begin(), head.end(), head.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    size_t length = 0;
    if (size_t at = head.find("content-length:"); at != std::string::npos) {
      length = std::stoul(head.substr(at + 15));
    }
    while (in.size() < head_end + 4 + length) {
      if (!more()) return;
    }
    const int n = requests_++;
    const int status = statuses_[std::min<size_t>(n, statuses_.size() - 1)];
    const std::string body =
        R"({"error":{"code":"canned","message":"canned )" + std::to_string(status) + R"("}})";
    const std::string out = "HTTP/1.1 " + std::to_string(status) +
                            " Canned\r\nContent-Type: application/json\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    send(client, out.data(), out.size(), MSG_NOSIGNAL);
  }

  const std::vector<int> statuses_;
  int fd_ = -1;
  std::string address_;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
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

  Registry& Make(std::vector<std::string> addresses, Retry retry = Retry(),
                 milliseconds stream_idle_timeout = MusterRegistryOptions{}.stream_idle_timeout) {
    MusterRegistryOptions options;
    options.addresses = std::move(addresses);
    options.max_attempts = retry.max_attempts;
    options.initial_backoff = retry.initial_backoff;
    options.max_backoff = retry.max_backoff;
    options.stream_idle_timeout = stream_idle_timeout;
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
  TcpForwarder proxy(musterd_.address());
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
  TcpForwarder proxy(musterd_.address());
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

class MusterRegistryKeepaliveTest : public MusterRegistryTest {
 protected:
  std::vector<std::string> MusterdArgs() const override { return {"--watch-keepalive", "100ms"}; }
};

// A watch stream that goes silent without an error (a half-open connection:
// the host vanished, or a middlebox dropped the flow) is noticed by its
// missing keep-alives. When a new stream opens, nothing is reported and no
// change is lost; when none can be opened, the outage is reported.
TEST_F(MusterRegistryKeepaliveTest, SilentStreamIsNoticedAndReplaced) {
  TcpForwarder proxy(musterd_.address());
  Registry& watched =
      Make({proxy.address()}, Retry{3, milliseconds(20), milliseconds(200)}, milliseconds(1000));
  Registry& direct = Make({musterd_.address()});
  UpdateRecorder& recorder = NewRecorder();
  ASSERT_THAT(watched.Subscribe(Query("svc"), recorder.Callback()), IsOk());
  ASSERT_TRUE(recorder.WaitForCount(1, kWait));  // the snapshot
  // A change seen proves the stream open.
  ASSERT_THAT(direct.Register(TestInstance("first"), call_), IsOk());
  ASSERT_TRUE(recorder.WaitForChange([](const Change& c) { return c.instance.id == "first"; }, kWait));

  // The stream in use goes dead; the next one works.
  proxy.SetSilent(true);
  proxy.SetSilent(false);
  ASSERT_THAT(direct.Register(TestInstance("a"), call_), IsOk());
  ASSERT_TRUE(recorder.WaitForChange([](const Change& c) { return c.instance.id == "a"; }, kWait))
      << "the change never came: the silent stream was not replaced";
  for (const WatchUpdate& u : recorder.updates()) EXPECT_THAT(u.status, IsOk());

  // Every connection goes dead: an outage, reported once; then it heals.
  proxy.SetSilent(true);
  const int failure = WaitForFailure(recorder);
  ASSERT_GE(failure, 0) << "the silent stream was never reported";
  EXPECT_THAT(recorder.updates()[failure].status, StatusIs(absl::StatusCode::kUnavailable, _));
  ASSERT_THAT(direct.Register(TestInstance("b"), call_), IsOk());
  proxy.SetSilent(false);
  ASSERT_TRUE(recorder.WaitForChange([](const Change& c) { return c.instance.id == "b"; }, kWait));
  int failures = 0;
  for (const WatchUpdate& u : recorder.updates()) failures += u.status.ok() ? 0 : 1;
  EXPECT_EQ(failures, 1);
  EXPECT_EQ(recorder.View().size(), 3u);
}

// In cluster mode musterd answers 504 when etcd did not answer in time and
// 409 when a concurrent change got in the way. Both ask to try again, and
// every call is idempotent: they are retried, as a 503 is.
TEST_F(MusterRegistryTest, RetriesAnswersThatAskToTryAgain) {
  CannedServer server({504, 409, 503, 200});
  Registry& registry = Make({server.address()}, Retry{4, milliseconds(10), milliseconds(20)});
  EXPECT_THAT(registry.UpdateService({"default", "svc", "a"}, call_), IsOk());
  EXPECT_EQ(server.requests(), 4);
}

// When they are all that comes back, the call fails with their own codes,
// DeadlineExceeded and Aborted: not Internal, nor FailedPrecondition (which a
// Registry reserves for "closed").
TEST_F(MusterRegistryTest, AnswersThatAskToTryAgainKeepTheirCodes) {
  const InstanceKey key{"default", "svc", "a"};
  {
    CannedServer server({504});
    Registry& registry = Make({server.address()}, Retry{2, milliseconds(10), milliseconds(20)});
    EXPECT_THAT(registry.UpdateService(key, call_),
                StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("canned 504")));
    EXPECT_EQ(server.requests(), 2);
  }
  {
    CannedServer server({409});
    Registry& registry = Make({server.address()}, Retry{2, milliseconds(10), milliseconds(20)});
    EXPECT_THAT(registry.Deregister(key, call_),
                StatusIs(absl::StatusCode::kAborted, HasSubstr("canned 409")));
    EXPECT_EQ(server.requests(), 2);
  }
}

// A refusal keeps the exact code musterd put in its error body: a script
// check on a registry that disables them is PermissionDenied (403), where a
// guess from the status alone made FailedPrecondition of it, the code a
// Registry reserves for "closed".
TEST_F(MusterRegistryTest, RefusalKeepsTheCodeOfTheErrorBody) {
  Registry& registry = Make({musterd_.address()});
  Instance in = TestInstance("scripted");
  Check script;
  script.id = "s";
  script.type = CheckType::kScript;
  script.target = "/bin/true";
  in.checks.push_back(script);
  EXPECT_THAT(registry.Register(in, call_),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("script checks are disabled")));
}

// Ids that would need escaping in a URL ('/', '?', '%', a space, UTF-8) are
// refused by the SDK itself, naming the id, before anything is sent: names
// are [A-Za-z0-9._-] on both sides. Nothing reaches musterd, so nothing is
// registered under a truncated id (an unescaped "a?b" would be "a").
TEST_F(MusterRegistryTest, IdsThatNeedEscapingAreRefusedBeforeSending) {
  Registry& registry = Make({musterd_.address()});
  for (const std::string id : {"a/b", "a?b", "a%2Fb", "a b", "\xC3\xA9t\xC3\xA9"}) {
    EXPECT_THAT(registry.Register(TestInstance(id), call_),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("id may contain only")))
        << id;
    EXPECT_THAT(registry.UpdateService({"default", "svc", id}, call_),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("id may contain only")))
        << id;
  }
  auto list = registry.ListServices(ServiceQuery{"default", "svc", ""}, call_);
  ASSERT_THAT(list, IsOk());
  EXPECT_TRUE(list->instances.empty());
}

// The same ids sent over the wire as core/wire/paths.h escapes them arrive
// at musterd as the one segment they are, and musterd refuses them by name;
// sent unescaped, '?' cuts the id short and '/' makes another path.
TEST_F(MusterRegistryTest, EscapedIdsReachMusterdWhole) {
  for (const std::string id : {"a/b", "a?b", "a%2Fb", "a b", "\xC3\xA9t\xC3\xA9"}) {
    wire::HttpResponse r =
        Must(client().Put(wire::InstanceTarget({"", "svc", id}), RegisterBody("127.0.0.1:80")));
    EXPECT_EQ(r.status, 400) << id << ": " << r.body;
    EXPECT_THAT(wire::StatusFromResponse(r),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("id may contain only")))
        << id;
  }
  EXPECT_TRUE(List("svc").instances.empty());
  // What an unescaped target did: "a?b" registered "a", "a/b" is no path.
  EXPECT_EQ(Must(client().Put("/api/v1/services/svc/instances/a?b", RegisterBody("127.0.0.1:80")))
                .status,
            201);
  EXPECT_EQ(List("svc").ids(), std::vector<std::string>{"a"});
  EXPECT_EQ(Must(client().Put("/api/v1/services/svc/instances/a/b", RegisterBody("127.0.0.1:80")))
                .status,
            404);
}

// musterd sends a check's change of state as a "health" event; a subscriber
// sees it as kUpdated (muster/change.h), the instance carrying the new state.
TEST_F(MusterRegistryTest, HealthChangeReachesSubscribersAsUpdate) {
  SilentListener target;  // completes TCP connections (the backlog): the check passes
  Registry& registry = Make({musterd_.address()});
  UpdateRecorder& recorder = NewRecorder();
  ASSERT_THAT(registry.Subscribe(Query("svc"), recorder.Callback()), IsOk());
  Instance in = TestInstance("checked");
  in.address = target.address();
  Check tcp;
  tcp.id = "tcp";
  tcp.type = CheckType::kTcp;
  tcp.interval = milliseconds(200);
  in.checks.push_back(tcp);
  ASSERT_THAT(registry.Register(in, call_), IsOk());
  auto passing = [](const Change& c) {
    return c.instance.id == "checked" && c.instance.checks.size() == 1 &&
           c.instance.checks[0].status == Health::kPassing;
  };
  ASSERT_TRUE(recorder.WaitForChange(passing, kWait));
  for (const Change& c : recorder.changes()) {
    EXPECT_NE(c.type, ChangeType::kHealth);
    if (passing(c)) {
      EXPECT_EQ(c.type, ChangeType::kUpdated);
    }
  }
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
