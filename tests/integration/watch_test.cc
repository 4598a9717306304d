// Watching musterd: blocking queries on the list endpoint and the Server-Sent
// Events stream (order, filters, resume with from= and Last-Event-ID, 410 when
// the history no longer holds the asked revision, keep-alives).
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "integration/musterd_fixture.h"
#include "support/blocking_query.h"

namespace muster::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr milliseconds kEventTimeout = seconds(10);
// How soon after a change a parked blocking query (wait=60s) must answer:
// half its wait, so an answer that came from the wait's end fails, with room
// for a loaded machine under a sanitizer.
constexpr milliseconds kWakeBound = seconds(30);

class WatchTest : public MusterdTest {
 protected:
  // Registers and returns the modify_revision it was acknowledged with.
  uint64_t RegisterAt(const std::string& service, const std::string& id,
                      boost::json::object extra = {}, const std::string& query = "") {
    wire::HttpResponse r = Register(service, id, RegisterBody("10.0.0.1:80", extra), query);
    EXPECT_TRUE(r.status == 200 || r.status == 201) << r.body;
    boost::json::value v = JsonOf(r);
    if (!v.is_object() || !v.as_object().contains("modify_revision")) return 0;
    return U64(v.as_object().at("modify_revision"));
  }
};

// A blocking query returns as soon as another client registers an instance:
// parked first (musterd counts it), then woken by the register well before its
// wait ends.
TEST_F(WatchTest, BlockingQueryWakesOnRegister) {
  RegisterAt("orders", "a");
  const ListResult before = List("orders");

  BlockingQuery query(musterd_.address(),
                      ListPath("orders", "index=" + std::to_string(before.revision) + "&wait=60s"),
                      seconds(90));
  ASSERT_TRUE(WaitForBlockingQueries(musterd_.address(), 1));
  const auto changed = Clock::now();
  const uint64_t registered = RegisterAt("orders", "b");
  ASSERT_TRUE(query.AnsweredWithin(changed, kWakeBound));

  const ListResult woken = ParseList(*query.Answer());
  EXPECT_THAT(woken.ids(), ElementsAre("a", "b"));
  EXPECT_GE(woken.revision, registered);
  EXPECT_GT(woken.revision, before.revision);
  ASSERT_TRUE(woken.index_header.has_value());
  EXPECT_EQ(*woken.index_header, woken.revision);
  // Answered, it no longer counts as waiting.
  EXPECT_TRUE(WaitForBlockingQueries(musterd_.address(), 0));
}

// With no change, a blocking query answers after `wait` with the same index.
TEST_F(WatchTest, BlockingQueryTimesOutWithSameIndex) {
  RegisterAt("orders", "a");
  const ListResult before = List("orders");
  const auto start = Clock::now();
  ListResult after =
      List("orders", "index=" + std::to_string(before.revision) + "&wait=1s");
  const auto took = Clock::now() - start;
  EXPECT_GE(took, milliseconds(900));
  EXPECT_LT(took, seconds(10));
  EXPECT_EQ(after.status, 200);
  EXPECT_THAT(after.ids(), ElementsAre("a"));
  ASSERT_TRUE(after.index_header.has_value());
  EXPECT_EQ(*after.index_header, before.revision);
  EXPECT_EQ(after.revision, before.revision);
}

// A change to another service does not wake a blocking query on this one.
TEST_F(WatchTest, BlockingQueryIgnoresOtherServices) {
  RegisterAt("orders", "a");
  const ListResult before = List("orders");
  RegisterAt("billing", "b");
  const auto start = Clock::now();
  ListResult after =
      List("orders", "index=" + std::to_string(before.revision) + "&wait=1s");
  EXPECT_GE(Clock::now() - start, milliseconds(900));
  EXPECT_THAT(after.ids(), ElementsAre("a"));
}

// An index the service has already moved past answers at once.
TEST_F(WatchTest, BlockingQueryBehindAnswersAtOnce) {
  const uint64_t first = RegisterAt("orders", "a");
  const uint64_t second = RegisterAt("orders", "a", {{"weight", 5}});
  const auto start = Clock::now();
  ListResult r = List("orders", "index=" + std::to_string(first) + "&wait=30s");
  EXPECT_LT(Clock::now() - start, seconds(10));
  EXPECT_GE(r.revision, second);
  ASSERT_EQ(r.instances.size(), 1u);
  EXPECT_EQ(r.instances[0].weight, 5u);
}

// A blocking query sees a deregister too.
TEST_F(WatchTest, BlockingQueryWakesOnDeregister) {
  RegisterAt("orders", "a");
  RegisterAt("orders", "b");
  const ListResult before = List("orders");
  BlockingQuery query(musterd_.address(),
                      ListPath("orders", "index=" + std::to_string(before.revision) + "&wait=60s"),
                      seconds(90));
  ASSERT_TRUE(WaitForBlockingQueries(musterd_.address(), 1));
  const auto changed = Clock::now();
  ASSERT_EQ(Deregister("orders", "a").status, 200);
  ASSERT_TRUE(query.AnsweredWithin(changed, kWakeBound));
  const ListResult woken = ParseList(*query.Answer());
  EXPECT_THAT(woken.ids(), ElementsAre("b"));
  EXPECT_GT(woken.revision, before.revision);
}

// A change wakes every query parked on the service, not only the first.
TEST_F(WatchTest, BlockingQueryChangeWakesEveryWaiter) {
  RegisterAt("orders", "a");
  const ListResult before = List("orders");
  const std::string target =
      ListPath("orders", "index=" + std::to_string(before.revision) + "&wait=60s");
  BlockingQuery first(musterd_.address(), target, seconds(90));
  BlockingQuery second(musterd_.address(), target, seconds(90));
  BlockingQuery third(musterd_.address(), target, seconds(90));
  ASSERT_TRUE(WaitForBlockingQueries(musterd_.address(), 3));
  const auto changed = Clock::now();
  RegisterAt("orders", "b");
  for (BlockingQuery* q : {&first, &second, &third}) {
    ASSERT_TRUE(q->AnsweredWithin(changed, kWakeBound));
    EXPECT_THAT(ParseList(*q->Answer()).ids(), ElementsAre("a", "b"));
  }
}

// register, update and deregister arrive in revision order with their types.
TEST_F(WatchTest, StreamDeliversRegisterUpdateDeregisterInOrder) {
  auto stream = Watch(wire::WatchTarget("", {"orders"}));
  ASSERT_NE(stream, nullptr);
  EXPECT_THAT(stream->response().Header("Content-Type").value_or(""),
              HasSubstr("text/event-stream"));

  const uint64_t r1 = RegisterAt("orders", "a");
  const uint64_t r2 = RegisterAt("orders", "a", {{"weight", 9}});
  ASSERT_EQ(Deregister("orders", "a").status, 200);

  auto e1 = NextEvent(*stream, kEventTimeout);
  ASSERT_TRUE(e1.has_value());
  EXPECT_EQ(e1->type, "registered");
  EXPECT_EQ(e1->sse_event, "registered");
  EXPECT_EQ(e1->revision, r1);
  EXPECT_EQ(e1->sse_id, std::to_string(r1));
  EXPECT_EQ(e1->ns, "default");
  EXPECT_EQ(e1->service, "orders");
  EXPECT_EQ(e1->id, "a");
  EXPECT_EQ(e1->instance.address, "10.0.0.1:80");
  EXPECT_EQ(e1->instance.create_revision, r1);

  auto e2 = NextEvent(*stream, kEventTimeout);
  ASSERT_TRUE(e2.has_value());
  EXPECT_EQ(e2->type, "updated");
  EXPECT_EQ(e2->sse_event, "updated");
  EXPECT_EQ(e2->revision, r2);
  EXPECT_EQ(e2->instance.weight, 9u);

  auto e3 = NextEvent(*stream, kEventTimeout);
  ASSERT_TRUE(e3.has_value());
  EXPECT_EQ(e3->type, "deregistered");
  EXPECT_EQ(e3->sse_event, "deregistered");
  EXPECT_EQ(e3->revision, r2 + 1);
  EXPECT_EQ(e3->id, "a");
  // The last state of the instance comes with it.
  EXPECT_EQ(e3->instance.weight, 9u);
  EXPECT_EQ(e3->instance.address, "10.0.0.1:80");
}

// An identical re-register is no change and sends no event.
TEST_F(WatchTest, IdenticalReRegisterSendsNoEvent) {
  auto stream = Watch(wire::WatchTarget("", {"orders"}));
  ASSERT_NE(stream, nullptr);
  const uint64_t r1 = RegisterAt("orders", "a");
  RegisterAt("orders", "a");
  const uint64_t r3 = RegisterAt("orders", "b");
  auto e1 = NextEvent(*stream, kEventTimeout);
  auto e2 = NextEvent(*stream, kEventTimeout);
  ASSERT_TRUE(e1.has_value() && e2.has_value());
  EXPECT_EQ(e1->revision, r1);
  EXPECT_EQ(e2->revision, r3);
  EXPECT_EQ(e2->id, "b");
  EXPECT_EQ(r3, r1 + 1);
}

// Many quick changes arrive complete, one revision after the other.
TEST_F(WatchTest, StreamHasNoGapsUnderManyChanges) {
  auto stream = Watch(wire::WatchPath());
  ASSERT_NE(stream, nullptr);
  std::vector<uint64_t> acked;
  for (int i = 0; i < 60; ++i) {
    acked.push_back(RegisterAt(i % 2 ? "orders" : "billing", "i-" + std::to_string(i % 7),
                               {{"weight", i + 1}}));
  }
  for (uint64_t want : acked) {
    auto e = NextEvent(*stream, kEventTimeout);
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->revision, want);
  }
}

// A watcher that stops reading while large changes pile up (more than the
// socket buffers hold) still gets every one of them, in order, once it reads
// again; /healthz counts the changes its socket could not take at once.
TEST_F(WatchTest, SlowReaderGetsEveryEventInOrder) {
  auto stream = Watch(wire::WatchTarget("", {"orders"}));
  ASSERT_NE(stream, nullptr);
  // About 33 KB of metadata per instance, 320 changes: over 10 MB, more
  // than loopback's socket buffers take while nobody reads.
  boost::json::object metadata;
  for (int k = 0; k < 64; ++k) metadata["key-" + std::to_string(k)] = std::string(500, 'a' + k % 26);
  std::vector<uint64_t> acked;
  for (int i = 0; i < 320; ++i) {
    acked.push_back(RegisterAt("orders", "i-" + std::to_string(i), {{"metadata", metadata}}));
  }
  for (uint64_t want : acked) {
    auto e = NextEvent(*stream, kEventTimeout);
    ASSERT_TRUE(e.has_value());
    ASSERT_EQ(e->revision, want);
  }
  wire::HttpResponse health = Must(client().Get("/healthz"));
  boost::json::value v = JsonOf(health);
  ASSERT_TRUE(v.is_object() && v.as_object().contains("watches")) << health.body;
  const boost::json::object& watches = v.as_object().at("watches").as_object();
  EXPECT_EQ(U64(watches.at("open")), 1u) << health.body;
  EXPECT_GE(U64(watches.at("backlogged")), 1u) << health.body;
}

// service= filters the stream; repeated service= takes several; none takes all.
TEST_F(WatchTest, StreamFiltersByService) {
  auto orders = Watch(wire::WatchTarget("", {"orders"}));
  auto two = Watch(wire::WatchTarget("", {"orders", "billing"}));
  auto all = Watch(wire::WatchPath());
  ASSERT_TRUE(orders && two && all);

  const uint64_t billing = RegisterAt("billing", "x");
  const uint64_t order = RegisterAt("orders", "y");
  const uint64_t payment = RegisterAt("payments", "z");

  auto o = NextEvent(*orders, kEventTimeout);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->revision, order);
  EXPECT_EQ(o->service, "orders");

  std::vector<uint64_t> got;
  for (int i = 0; i < 2; ++i) {
    auto e = NextEvent(*two, kEventTimeout);
    ASSERT_TRUE(e.has_value());
    got.push_back(e->revision);
  }
  EXPECT_THAT(got, ElementsAre(billing, order));

  got.clear();
  for (int i = 0; i < 3; ++i) {
    auto e = NextEvent(*all, kEventTimeout);
    ASSERT_TRUE(e.has_value());
    got.push_back(e->revision);
  }
  EXPECT_THAT(got, ElementsAre(billing, order, payment));

  // After "payments", the next event for the orders watcher is orders' own.
  const uint64_t later = RegisterAt("orders", "w");
  auto o2 = NextEvent(*orders, kEventTimeout);
  ASSERT_TRUE(o2.has_value());
  EXPECT_EQ(o2->revision, later);
}

// A watch sees its own namespace only.
TEST_F(WatchTest, StreamIsScopedToItsNamespace) {
  auto default_ns = Watch(wire::WatchPath());
  auto team_a = Watch(wire::WatchTarget("team-a", {}));
  ASSERT_TRUE(default_ns && team_a);
  const uint64_t in_a = RegisterAt("orders", "a", {}, "namespace=team-a");
  const uint64_t in_default = RegisterAt("orders", "b");

  auto d = NextEvent(*default_ns, kEventTimeout);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->revision, in_default);
  EXPECT_EQ(d->ns, "default");

  auto a = NextEvent(*team_a, kEventTimeout);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->revision, in_a);
  EXPECT_EQ(a->ns, "team-a");
  EXPECT_EQ(a->instance.ns, "team-a");
}

// from=REV replays the retained events from REV on, then continues live.
TEST_F(WatchTest, FromReplaysHistoryThenContinues) {
  RegisterAt("orders", "a");
  const uint64_t r2 = RegisterAt("orders", "b");
  const uint64_t r3 = RegisterAt("orders", "c");

  auto stream = Watch(wire::WatchTarget("", {"orders"}, r2));
  ASSERT_NE(stream, nullptr);
  auto e2 = NextEvent(*stream, kEventTimeout);
  auto e3 = NextEvent(*stream, kEventTimeout);
  ASSERT_TRUE(e2.has_value() && e3.has_value());
  EXPECT_EQ(e2->revision, r2);
  EXPECT_EQ(e2->id, "b");
  EXPECT_EQ(e3->revision, r3);
  EXPECT_EQ(e3->id, "c");

  const uint64_t r4 = RegisterAt("orders", "d");
  auto e4 = NextEvent(*stream, kEventTimeout);
  ASSERT_TRUE(e4.has_value());
  EXPECT_EQ(e4->revision, r4);
}

// Last-Event-ID: N resumes at N + 1, as a reconnecting browser expects.
TEST_F(WatchTest, LastEventIdResumesAfterThatEvent) {
  const uint64_t r1 = RegisterAt("orders", "a");
  const uint64_t r2 = RegisterAt("orders", "b");
  const uint64_t r3 = RegisterAt("orders", "c");
  auto stream = Watch(wire::WatchTarget("", {"orders"}), {{"Last-Event-ID", std::to_string(r1)}});
  ASSERT_NE(stream, nullptr);
  auto e2 = NextEvent(*stream, kEventTimeout);
  auto e3 = NextEvent(*stream, kEventTimeout);
  ASSERT_TRUE(e2.has_value() && e3.has_value());
  EXPECT_EQ(e2->revision, r2);
  EXPECT_EQ(e3->revision, r3);
}

// The documented resync: list, then watch from the list's revision + 1.
TEST_F(WatchTest, WatchFromListRevisionPlusOneSeesOnlyNewChanges) {
  RegisterAt("orders", "a");
  const ListResult list = List("orders");
  auto stream = Watch(wire::WatchTarget("", {"orders"}, list.revision + 1));
  ASSERT_NE(stream, nullptr);
  const uint64_t next = RegisterAt("orders", "b");
  auto e = NextEvent(*stream, kEventTimeout);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->revision, next);
  EXPECT_EQ(e->id, "b");
}

// musterd with a tiny history and fast keep-alives.
class ShortHistoryWatchTest : public WatchTest {
 protected:
  std::vector<std::string> MusterdArgs() const override {
    return {"--history", "16", "--watch-keepalive", "1s"};
  }
};

// from= older than the retained history is 410 gone; within it, it replays.
TEST_F(ShortHistoryWatchTest, FromOlderThanHistoryIsGone) {
  std::vector<uint64_t> revisions;
  for (int i = 0; i < 24; ++i) revisions.push_back(RegisterAt("orders", "i-" + std::to_string(i)));
  ASSERT_EQ(revisions.size(), 24u);

  // Over plain HTTP: 410 with the documented error code.
  wire::HttpResponse gone = Must(
      client().Get(wire::WatchTarget("", {}, revisions.front()), seconds(5)));
  EXPECT_EQ(gone.status, 410) << gone.body;
  EXPECT_EQ(ErrorCodeOf(gone), "gone") << gone.body;
  wire::HttpResponse from_one = Must(client().Get(wire::WatchTarget("", {}, 1), seconds(5)));
  EXPECT_EQ(from_one.status, 410) << from_one.body;

  // Through SseStream: OutOfRange.
  auto stream = wire::SseStream::Open(musterd_.address(), wire::WatchTarget("", {}, 1));
  ASSERT_FALSE(stream.ok());
  EXPECT_EQ(stream.status().code(), absl::StatusCode::kOutOfRange) << stream.status();

  // Last-Event-ID before the history is gone as well.
  auto by_id = wire::SseStream::Open(musterd_.address(), wire::WatchPath(),
                                       {{"Last-Event-ID", std::to_string(revisions.front())}});
  ASSERT_FALSE(by_id.ok());
  EXPECT_EQ(by_id.status().code(), absl::StatusCode::kOutOfRange) << by_id.status();

  // The last few revisions are still retained.
  const uint64_t recent = revisions[revisions.size() - 5];
  auto kept = Watch(wire::WatchTarget("", {}, recent));
  ASSERT_NE(kept, nullptr);
  for (size_t i = revisions.size() - 5; i < revisions.size(); ++i) {
    auto e = NextEvent(*kept, kEventTimeout);
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->revision, revisions[i]);
  }
}

// A stream that carries an event more often than --watch-keepalive (1 s
// here) needs no keep-alive; it gets them once it is quiet.
TEST_F(ShortHistoryWatchTest, KeepAlivesOnlyWhenQuiet) {
  auto stream = Watch(wire::WatchTarget("", {"orders"}));
  ASSERT_NE(stream, nullptr);
  const auto busy_until = Clock::now() + milliseconds(2500);
  for (int i = 0; Clock::now() < busy_until; ++i) {
    const uint64_t r = RegisterAt("orders", "a", {{"weight", i + 1}});
    auto e = NextEvent(*stream, kEventTimeout);
    ASSERT_TRUE(e.has_value());
    ASSERT_EQ(e->revision, r);
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_EQ(stream->comments_seen(), 0u);
  auto none = stream->Next(milliseconds(2500));
  EXPECT_EQ(none.status().code(), absl::StatusCode::kDeadlineExceeded) << none.status();
  EXPECT_GE(stream->comments_seen(), 1u);
}

// An idle stream carries ": keep-alive" comments at --watch-keepalive.
TEST_F(ShortHistoryWatchTest, IdleStreamSendsKeepAlives) {
  auto stream = Watch(wire::WatchTarget("", {"orders"}));
  ASSERT_NE(stream, nullptr);
  // Waiting out the window is the point here: no event may arrive meanwhile.
  auto none = stream->Next(milliseconds(2500));
  EXPECT_EQ(none.status().code(), absl::StatusCode::kDeadlineExceeded) << none.status();
  EXPECT_GE(stream->comments_seen(), 1u);
  // And the stream still works afterwards.
  const uint64_t r = RegisterAt("orders", "a");
  auto e = NextEvent(*stream, kEventTimeout);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->revision, r);
}

}  // namespace
}  // namespace muster::testing
