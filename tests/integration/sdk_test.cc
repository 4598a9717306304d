// The SDK against a real musterd: Discovery follows a service through the
// musterd backend (pushed over the watch stream, no polling), keeps serving
// its last list, marked stale, while musterd is down and recovers when it is
// back; the Heartbeater registers its instance again when musterd forgot it.
//
// The SDK talks to musterd through a TcpForwarder on a port that stays the
// same across restarts (a restarted musterd listens on a new port).
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "integration/musterd_fixture.h"
#include "integration/tcp_forwarder.h"
#include "muster/muster.h"
#include "support/status_matchers.h"

namespace muster::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using std::chrono::milliseconds;
using std::chrono::seconds;

ServiceQuery Echo() {
  ServiceQuery q;
  q.service = "echo";
  return q;
}

std::vector<std::string> Ids(const InstanceList& list) {
  std::vector<std::string> ids;
  for (const Instance& in : *list) ids.push_back(in.id);
  return ids;
}

Instance EchoInstance(const std::string& id, uint32_t ttl_seconds) {
  Instance in;
  in.service = "echo";
  in.id = id;
  in.address = "127.0.0.1:9001";
  in.ttl_seconds = ttl_seconds;
  return in;
}

class SdkTest : public MusterdTest {
 protected:
  void SetUp() override {
    MusterdTest::SetUp();
    if (HasFatalFailure()) return;
    forwarder_.SetTarget(musterd_.port());
    MusterRegistryOptions options;
    options.addresses = {forwarder_.address()};
    options.max_backoff = milliseconds(500);
    auto registry = NewMusterRegistry(options);
    ASSERT_THAT(registry, IsOk());
    registry_ = *std::move(registry);
  }

  // The ids of "echo" in the Discovery cache; empty on error.
  static std::vector<std::string> CachedIds(Discovery& discovery) {
    auto s = discovery.Get(Echo());
    return s.ok() ? Ids((*s)->instances) : std::vector<std::string>{};
  }

  static bool IsStale(Discovery& discovery) {
    auto s = discovery.Get(Echo());
    return s.ok() && (*s)->stale;
  }

  // Whether musterd at `address` lists `id` of "echo".
  static bool ListedAt(const std::string& address, const std::string& id) {
    wire::HttpClient c(address);
    auto r = c.Get(ListPath("echo"), seconds(2));
    if (!r.ok() || r->status != 200) return false;
    return ParseList(*r).Find(id) != nullptr;
  }

  TcpForwarder forwarder_;
  std::unique_ptr<Registry> registry_;
};

// A registration made by someone else reaches the cache through the watch
// stream, with the revision musterd gave it.
TEST_F(SdkTest, DiscoverySeesRegistrationPushed) {
  Discovery discovery(registry_.get(), {});
  auto first = discovery.Get(Echo());
  ASSERT_THAT(first, IsOk());
  EXPECT_TRUE((*first)->instances->empty());

  wire::HttpResponse reg = Register("echo", "e1", RegisterBody("127.0.0.1:9001", {{"ttl_seconds", 0}}));
  ASSERT_EQ(reg.status, 201) << reg.body;
  const uint64_t revision = U64(JsonOf(reg).as_object().at("modify_revision"));
  ASSERT_TRUE(WaitFor([&] { return CachedIds(discovery).size() == 1; }, seconds(5)));
  auto now = discovery.Get(Echo());
  ASSERT_THAT(now, IsOk());
  EXPECT_THAT(Ids((*now)->instances), ElementsAre("e1"));
  EXPECT_EQ((*now)->revision, revision);
  auto picked = discovery.Pick(Echo());
  ASSERT_THAT(picked, IsOk());
  EXPECT_EQ(picked->instance().address, "127.0.0.1:9001");

  ASSERT_EQ(Deregister("echo", "e1").status, 200);
  ASSERT_TRUE(WaitFor([&] { return CachedIds(discovery).empty(); }, seconds(5)));
}

// While musterd is down the last list is served, marked stale; once musterd
// is back the mark goes and changes flow again.
TEST_F(SdkTest, ServesStaleListWhileMusterdIsDown) {
  ASSERT_EQ(Register("echo", "e1", RegisterBody("127.0.0.1:9001", {{"ttl_seconds", 0}})).status, 201);
  Discovery discovery(registry_.get(), {});
  auto before = discovery.Get(Echo());
  ASSERT_THAT(before, IsOk());
  ASSERT_THAT(Ids((*before)->instances), ElementsAre("e1"));
  EXPECT_FALSE((*before)->stale);

  musterd_.Kill9();
  ASSERT_TRUE(WaitFor([&] { return IsStale(discovery); }, seconds(10)));
  auto stale = discovery.Get(Echo());
  ASSERT_THAT(stale, IsOk());
  EXPECT_THAT(Ids((*stale)->instances), ElementsAre("e1"));
  EXPECT_GE((*stale)->stale_since, (*before)->updated_at);
  auto picked = discovery.Pick(Echo());
  ASSERT_THAT(picked, IsOk());
  EXPECT_EQ(picked->instance().id, "e1");

  ASSERT_THAT(musterd_.Restart(MusterdArgs()), IsOk());
  forwarder_.SetTarget(musterd_.port());
  Reconnect();
  ASSERT_TRUE(WaitFor([&] { return !IsStale(discovery); }, seconds(15)));
  EXPECT_THAT(CachedIds(discovery), ElementsAre("e1"));  // durable across the restart

  ASSERT_EQ(Register("echo", "e2", RegisterBody("127.0.0.1:9002", {{"ttl_seconds", 0}})).status, 201);
  ASSERT_TRUE(WaitFor([&] { return CachedIds(discovery).size() == 2; }, seconds(5)));
  EXPECT_THAT(CachedIds(discovery), ElementsAre("e1", "e2"));
}

// The first use of a service while musterd is unreachable fails (Unavailable)
// within the first-list timeout rather than hanging.
TEST_F(SdkTest, FirstUseWhileMusterdIsDownIsUnavailable) {
  musterd_.Kill9();
  DiscoveryOptions options;
  options.first_list_timeout = seconds(3);
  Discovery discovery(registry_.get(), options);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THAT(discovery.Get(Echo()), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("echo")));
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(5));
}

// musterd comes back empty (a fresh data directory): the heartbeat hears 404
// and the Heartbeater registers the instance again.
TEST_F(SdkTest, HeartbeaterRegistersAgainWhenMusterdForgot) {
  HeartbeaterOptions options;
  options.retry_initial = milliseconds(50);
  options.retry_max = milliseconds(500);
  Heartbeater heartbeater(registry_.get(), EchoInstance("e1", 2), options);
  ASSERT_THAT(heartbeater.Start(), IsOk());
  ASSERT_TRUE(ListedAt(musterd_.address(), "e1"));

  musterd_.Kill9();
  MusterdProcess fresh(MUSTERD_PATH);
  ASSERT_THAT(fresh.Start(), IsOk());
  forwarder_.SetTarget(fresh.port());
  EXPECT_TRUE(WaitFor([&] { return ListedAt(fresh.address(), "e1"); }, seconds(10)))
      << fresh.Logs();
  // musterd lists it as soon as it stored it, a moment before the
  // Heartbeater has the answer and counts the registration.
  EXPECT_TRUE(WaitFor([&] { return heartbeater.stats().registrations >= 2; }, seconds(5)));

  heartbeater.Stop();
  EXPECT_FALSE(ListedAt(fresh.address(), "e1"));
}

// Deregistered by another client, the instance is registered again.
TEST_F(SdkTest, HeartbeaterRegistersAgainAfterDeregistration) {
  Heartbeater heartbeater(registry_.get(), EchoInstance("e1", 1), {});
  ASSERT_THAT(heartbeater.Start(), IsOk());
  ASSERT_EQ(Deregister("echo", "e1").status, 200);
  EXPECT_TRUE(WaitFor([&] { return heartbeater.stats().registrations >= 2; }, seconds(5)));
  EXPECT_TRUE(ListedAt(musterd_.address(), "e1"));
  heartbeater.Stop();
  EXPECT_FALSE(ListedAt(musterd_.address(), "e1"));
}

// A Heartbeater keeps a 1 s lease alive over musterd for several TTLs.
TEST_F(SdkTest, HeartbeaterKeepsLeaseAlive) {
  Heartbeater heartbeater(registry_.get(), EchoInstance("e1", 1), {});
  ASSERT_THAT(heartbeater.Start(), IsOk());
  auto stream = Watch(wire::WatchTarget("", {"echo"}));
  ASSERT_NE(stream, nullptr);
  // Nothing happens to the instance for 3 s (the time passing is the point).
  auto event = stream->Next(seconds(3));
  EXPECT_THAT(event, StatusIs(absl::StatusCode::kDeadlineExceeded, ::testing::_));
  EXPECT_TRUE(ListedAt(musterd_.address(), "e1"));
  EXPECT_GE(heartbeater.stats().heartbeats, 5u);
}

}  // namespace
}  // namespace muster::testing
