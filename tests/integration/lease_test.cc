// Leases over HTTP: an instance that stops heartbeating expires (leaves the
// list, wakes watchers with an "expired" event), heartbeats and re-registers
// keep it, and ttl_seconds = 0 never expires.
#include <chrono>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "integration/musterd_fixture.h"

namespace muster::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// A ttl_seconds = 1 instance must be gone within about 2.5 s of its last
// renewal: the TTL plus the server's expiry sweep, with room for a loaded machine.
constexpr milliseconds kExpiryBound(3000);

class LeaseTest : public MusterdTest {};

// Without heartbeats a ttl=1 instance expires: it leaves the list, an
// "expired" event carries its last state, and a late heartbeat is 404.
TEST_F(LeaseTest, InstanceWithoutHeartbeatsExpires) {
  auto stream = Watch(wire::WatchTarget("", {"orders"}));
  ASSERT_NE(stream, nullptr);
  ASSERT_EQ(Register("orders", "forever", RegisterBody("10.0.0.1:80", {{"ttl_seconds", 0}})).status,
            201);
  // The lease cannot start before the request is sent.
  const auto sent_at = Clock::now();
  wire::HttpResponse reg =
      Register("orders", "short", RegisterBody("10.0.0.2:80", {{"ttl_seconds", 1}, {"weight", 3}}));
  ASSERT_EQ(reg.status, 201) << reg.body;

  auto first = NextEvent(*stream, seconds(5));
  auto second = NextEvent(*stream, seconds(5));
  ASSERT_TRUE(first.has_value() && second.has_value());
  EXPECT_EQ(first->id, "forever");
  EXPECT_EQ(second->id, "short");
  EXPECT_EQ(second->type, "registered");

  auto expired = NextEvent(*stream, kExpiryBound + seconds(2));
  ASSERT_TRUE(expired.has_value());
  const auto took = Clock::now() - sent_at;
  EXPECT_EQ(expired->type, "expired");
  EXPECT_EQ(expired->sse_event, "expired");
  EXPECT_EQ(expired->id, "short");
  EXPECT_EQ(expired->instance.address, "10.0.0.2:80");
  EXPECT_EQ(expired->instance.weight, 3u);
  EXPECT_EQ(expired->revision, second->revision + 1);
  EXPECT_GE(took, milliseconds(950)) << "expired before its TTL";
  EXPECT_LE(took, kExpiryBound) << "expired late";

  // Once the event is out, the list reflects it; the ttl=0 instance stays.
  ListResult list = List("orders");
  EXPECT_THAT(list.ids(), ElementsAre("forever"));
  EXPECT_GE(list.revision, expired->revision);

  wire::HttpResponse late = Heartbeat("orders", "short");
  EXPECT_EQ(late.status, 404) << late.body;
  EXPECT_EQ(ErrorCodeOf(late), "not_found") << late.body;
}

// The instance is gone from the list within the bound even with no watcher.
TEST_F(LeaseTest, ExpiredInstanceLeavesTheList) {
  ASSERT_EQ(Register("orders", "short", RegisterBody("10.0.0.2:80", {{"ttl_seconds", 1}})).status,
            201);
  EXPECT_THAT(List("orders").ids(), ElementsAre("short"));
  const bool gone =
      WaitFor([&] { return List("orders").instances.empty(); }, kExpiryBound, milliseconds(50));
  EXPECT_TRUE(gone) << "ttl=1 instance still listed after " << kExpiryBound.count() << " ms";
}

// Heartbeats every few hundred ms keep a ttl=1 instance alive for 3 s.
TEST_F(LeaseTest, HeartbeatsKeepInstanceAlive) {
  auto stream = Watch(wire::WatchTarget("", {"orders"}));
  ASSERT_NE(stream, nullptr);
  ASSERT_EQ(Register("orders", "kept", RegisterBody("10.0.0.1:80", {{"ttl_seconds", 1}})).status,
            201);
  auto registered = NextEvent(*stream, seconds(5));
  ASSERT_TRUE(registered.has_value());

  const auto until = Clock::now() + seconds(3);
  int beats = 0;
  while (Clock::now() < until) {
    wire::HttpResponse beat = Heartbeat("orders", "kept");
    ASSERT_EQ(beat.status, 200) << "heartbeat " << beats << ": " << beat.body;
    ++beats;
    // The heartbeat interval doubles as the window in which no event may come.
    auto event = stream->Next(milliseconds(300));
    ASSERT_EQ(event.status().code(), absl::StatusCode::kDeadlineExceeded)
        << "unexpected event while heartbeating: " << (event.ok() ? event->data : "");
  }
  EXPECT_GE(beats, 5);
  ListResult list = List("orders");
  ASSERT_THAT(list.ids(), ElementsAre("kept"));
  EXPECT_EQ(list.instances[0].health, Health::kPassing);
  EXPECT_EQ(list.instances[0].modify_revision, registered->revision);
}

// Every register renews the lease, even one that changes nothing.
TEST_F(LeaseTest, ReRegisterRenewsLease) {
  const std::string body = RegisterBody("10.0.0.1:80", {{"ttl_seconds", 1}});
  ASSERT_EQ(Register("orders", "kept", body).status, 201);
  const auto until = Clock::now() + milliseconds(2500);
  while (Clock::now() < until) {
    ASSERT_EQ(Register("orders", "kept", body).status, 200);
    std::this_thread::sleep_for(milliseconds(250));  // the renewal cadence under test
  }
  EXPECT_THAT(List("orders").ids(), ElementsAre("kept"));
}

// Expiry is a change: it wakes a blocking query on the service.
TEST_F(LeaseTest, ExpiryWakesBlockingQuery) {
  ASSERT_EQ(Register("orders", "short", RegisterBody("10.0.0.2:80", {{"ttl_seconds", 1}})).status,
            201);
  const ListResult before = List("orders");
  const auto start = Clock::now();
  ListResult after =
      List("orders", "index=" + std::to_string(before.revision) + "&wait=30s");
  EXPECT_LE(Clock::now() - start, kExpiryBound + seconds(1));
  EXPECT_THAT(after.ids(), IsEmpty());
  EXPECT_EQ(after.revision, before.revision + 1);
}

// An expired instance can register again and is new (201).
TEST_F(LeaseTest, ExpiredInstanceRegistersAgainAsNew) {
  const std::string body = RegisterBody("10.0.0.2:80", {{"ttl_seconds", 1}});
  wire::HttpResponse first = Register("orders", "short", body);
  ASSERT_EQ(first.status, 201);
  ASSERT_TRUE(WaitFor([&] { return List("orders").instances.empty(); }, kExpiryBound,
                      milliseconds(50)));
  wire::HttpResponse again = Register("orders", "short", body);
  EXPECT_EQ(again.status, 201) << again.body;
}

}  // namespace
}  // namespace muster::testing
