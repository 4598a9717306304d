#include "catalog/watch_hub.h"

#include <atomic>

#include <gtest/gtest.h>

namespace muster {
namespace {

Event MakeEvent(uint64_t revision, std::string service, ChangeType type = ChangeType::kRegistered) {
  auto in = std::make_shared<Instance>();
  in->service = std::move(service);
  in->id = "i" + std::to_string(revision);
  in->address = "127.0.0.1:1";
  return Event{revision, type, in, {}};
}

// Read returns the events of the followed services, in revision order.
TEST(WatchHubTest, ReadReturnsMatchingEventsInOrder) {
  WatchHub hub(100);
  hub.Publish({MakeEvent(1, "a"), MakeEvent(2, "b"), MakeEvent(3, "a")});
  auto r = hub.Read(1, WatchFilter{"default", {"a"}}, 100);
  EXPECT_FALSE(r.compacted);
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.events[0].revision, 1u);
  EXPECT_EQ(r.events[1].revision, 3u);
  EXPECT_EQ(r.next, 4u);
  EXPECT_TRUE(hub.Read(4, WatchFilter{"default", {}}, 100).events.empty());
}

// An empty service list follows every service of the namespace, and only it.
TEST(WatchHubTest, EmptyFilterFollowsWholeNamespace) {
  WatchHub hub(100);
  hub.Publish({MakeEvent(1, "a"), MakeEvent(2, "b")});
  EXPECT_EQ(hub.Read(1, WatchFilter{"default", {}}, 100).events.size(), 2u);
  EXPECT_TRUE(hub.Read(1, WatchFilter{"other", {}}, 100).events.empty());
}

// A reader that asks for a revision that has left the history must resync.
TEST(WatchHubTest, FromOlderThanHistoryIsCompacted) {
  WatchHub hub(4);
  for (uint64_t r = 1; r <= 6; ++r) hub.Publish({MakeEvent(r, "a")});
  EXPECT_EQ(hub.oldest_retained(), 3u);
  EXPECT_TRUE(hub.Read(2, WatchFilter{}, 100).compacted);
  auto r = hub.Read(3, WatchFilter{}, 100);
  EXPECT_FALSE(r.compacted);
  EXPECT_EQ(r.events.size(), 4u);
}

// Cluster mode: etcd revisions have gaps and a transaction can change several
// instances at one revision. Reads find their place by revision, never split
// a revision, and eviction drops whole revisions.
TEST(WatchHubTest, RevisionsWithGapsAndRepeats) {
  WatchHub hub(3);
  hub.Reset(9);
  hub.Publish({MakeEvent(10, "a"), MakeEvent(15, "a"), MakeEvent(15, "b")});
  auto r = hub.Read(11, WatchFilter{}, 100);  // inside a gap
  EXPECT_FALSE(r.compacted);
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.events[0].revision, 15u);
  EXPECT_EQ(r.next, 16u);
  r = hub.Read(10, WatchFilter{}, 2);  // max 2 would split revision 15: it does not
  ASSERT_EQ(r.events.size(), 3u);
  EXPECT_EQ(r.next, 16u);
  r = hub.Read(10, WatchFilter{}, 1);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.next, 15u);
  EXPECT_TRUE(hub.Read(30, WatchFilter{}, 10).events.empty());
  EXPECT_EQ(hub.Read(30, WatchFilter{}, 10).next, 30u);

  hub.Publish({MakeEvent(20, "a")});  // 4 events > 3: revision 10 goes
  EXPECT_EQ(hub.oldest_retained(), 11u);
  EXPECT_TRUE(hub.Read(10, WatchFilter{}, 10).compacted);
  EXPECT_EQ(hub.Read(11, WatchFilter{}, 10).events.size(), 3u);
  hub.Publish({MakeEvent(21, "a")});  // revision 15 goes whole, both events
  EXPECT_EQ(hub.oldest_retained(), 16u);
  EXPECT_EQ(hub.Read(16, WatchFilter{}, 10).events.size(), 2u);
}

// After a restart the history starts empty after the stored revision.
TEST(WatchHubTest, ResetStartsHistoryAfterRevision) {
  WatchHub hub(10);
  hub.Reset(41);
  EXPECT_TRUE(hub.Read(41, WatchFilter{}, 10).compacted);
  auto r = hub.Read(42, WatchFilter{}, 10);
  EXPECT_FALSE(r.compacted);
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(r.next, 42u);
  hub.Publish({MakeEvent(42, "a")});
  EXPECT_EQ(hub.Read(42, WatchFilter{}, 10).events.size(), 1u);
}

// Read returns at most `max` events and says where to continue.
TEST(WatchHubTest, ReadIsBounded) {
  WatchHub hub(100);
  for (uint64_t r = 1; r <= 10; ++r) hub.Publish({MakeEvent(r, "a")});
  auto r = hub.Read(1, WatchFilter{}, 3);
  ASSERT_EQ(r.events.size(), 3u);
  EXPECT_EQ(r.next, 4u);
}

// An event of `service` whose instance carries `metadata_bytes` of metadata
// (64 entries, as the default limits allow at most).
Event BigEvent(uint64_t revision, std::string service, size_t metadata_bytes) {
  auto in = std::make_shared<Instance>();
  in->service = std::move(service);
  in->id = "i" + std::to_string(revision);
  in->address = "127.0.0.1:1";
  for (size_t k = 0; k < 64; ++k) {
    in->metadata["key" + std::to_string(k)] = std::string(metadata_bytes / 64, 'x');
  }
  return Event{revision, ChangeType::kUpdated, in, {}};
}

// An event counts what it holds: its instance with the metadata, and its
// text as if formatted (about the instance's JSON), so a 32 KiB instance is
// counted at more than twice that; a small one at a few hundred bytes.
TEST(WatchHubTest, EventBytesCountInstanceAndText) {
  const size_t big = ApproximateBytes(BigEvent(1, "a", 32 << 10));
  EXPECT_GT(big, 2 * (32u << 10));
  EXPECT_LT(big, 3 * (32u << 10));
  const size_t small = ApproximateBytes(MakeEvent(1, "a"));
  EXPECT_GT(small, 500u);
  EXPECT_LT(small, 2000u);
}

// The history is bounded by bytes as well as by events: whichever bound is
// passed first drops whole revisions from the front, and a reader from
// before them must resync.
TEST(WatchHubTest, HistoryIsBoundedByBytes) {
  const size_t event_bytes = ApproximateBytes(BigEvent(1, "a", 32 << 10));
  const size_t limit = 10 * event_bytes + event_bytes / 2;  // room for 10 events
  WatchHub hub(500, limit);
  for (uint64_t r = 1; r <= 100; ++r) hub.Publish({BigEvent(r, "a", 32 << 10)});
  const WatchHub::HistoryStats stats = hub.history_stats();
  EXPECT_EQ(stats.events, 10u);
  EXPECT_LE(stats.bytes, limit);
  EXPECT_GT(stats.bytes, limit - event_bytes);
  EXPECT_EQ(stats.oldest_revision, 91u);
  EXPECT_EQ(hub.oldest_retained(), 91u);
  EXPECT_TRUE(hub.Read(90, WatchFilter{}, 1000).compacted);
  EXPECT_EQ(hub.Read(91, WatchFilter{}, 1000).events.size(), 10u);

  // Small events (under 1 KiB each) fit the same bytes many times over: the
  // count bound holds them to 500.
  for (uint64_t r = 101; r <= 2100; ++r) hub.Publish({MakeEvent(r, "a")});
  EXPECT_EQ(hub.history_stats().events, 500u);
  EXPECT_LT(hub.history_stats().bytes, limit);
  EXPECT_EQ(hub.oldest_retained(), 1601u);

  hub.Reset(3000);
  EXPECT_EQ(hub.history_stats().events, 0u);
  EXPECT_EQ(hub.history_stats().bytes, 0u);
}

// An event larger than the whole byte bound still stays, as the newest
// revision: a watcher woken for it can read it. The next one replaces it.
TEST(WatchHubTest, NewestRevisionStaysWhateverItsSize) {
  WatchHub hub(1000, 1024);
  hub.Publish({BigEvent(1, "a", 32 << 10), BigEvent(1, "b", 32 << 10)});
  EXPECT_EQ(hub.history_stats().events, 2u);
  EXPECT_EQ(hub.Read(1, WatchFilter{}, 10).events.size(), 2u);
  hub.Publish({BigEvent(2, "a", 32 << 10)});
  EXPECT_EQ(hub.history_stats().events, 1u);
  EXPECT_TRUE(hub.Read(1, WatchFilter{}, 10).compacted);
  EXPECT_EQ(hub.Read(2, WatchFilter{}, 10).events.size(), 1u);
}

// A read stops at `max_bytes` (between revisions), says there is more, and
// reads on from where it stopped.
TEST(WatchHubTest, ReadIsBoundedByBytes) {
  WatchHub hub(100);
  for (uint64_t r = 1; r <= 10; ++r) hub.Publish({BigEvent(r, "a", 32 << 10)});
  const size_t event_bytes = hub.history_stats().bytes / 10;
  auto r = hub.Read(1, WatchFilter{}, 100, 3 * event_bytes);
  ASSERT_EQ(r.events.size(), 3u);
  EXPECT_TRUE(r.more);
  EXPECT_EQ(r.next, 4u);
  // At least one revision, however small the budget.
  r = hub.Read(4, WatchFilter{}, 100, 1);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.next, 5u);
  r = hub.Read(5, WatchFilter{}, 100, 100 * event_bytes);
  EXPECT_EQ(r.events.size(), 6u);
  EXPECT_FALSE(r.more);
  EXPECT_EQ(r.next, 11u);
}

// Subscribers are woken for their own services only; unsubscribed ones never.
TEST(WatchHubTest, SubscribersAreNotifiedForTheirServices) {
  WatchHub hub(100);
  std::atomic<int> a_calls{0}, all_calls{0}, gone_calls{0};
  hub.Subscribe(WatchFilter{"default", {"a"}}, [&] { ++a_calls; });
  hub.Subscribe(WatchFilter{"default", {}}, [&] { ++all_calls; });
  auto gone = hub.Subscribe(WatchFilter{"default", {"a"}}, [&] { ++gone_calls; });
  hub.Unsubscribe(gone);
  hub.Publish({MakeEvent(1, "b")});
  EXPECT_EQ(a_calls, 0);
  EXPECT_EQ(all_calls, 1);
  hub.Publish({MakeEvent(2, "a")});
  EXPECT_EQ(a_calls, 1);
  EXPECT_EQ(all_calls, 2);
  EXPECT_EQ(gone_calls, 0);
  EXPECT_EQ(hub.subscriber_count(), 2u);
}

// Append makes the events readable and wakes nobody; Wake wakes those who
// were subscribed at the Append. A later subscriber is not in it: it reads
// the events itself.
TEST(WatchHubTest, AppendThenWake) {
  WatchHub hub(100);
  std::atomic<int> early_calls{0}, late_calls{0};
  hub.Subscribe(WatchFilter{"default", {"a"}}, [&] { ++early_calls; });
  WatchHub::Wakeups wakeups = hub.Append({MakeEvent(1, "a")});
  EXPECT_EQ(wakeups.size(), 1u);
  EXPECT_EQ(early_calls, 0);
  EXPECT_EQ(hub.Read(1, WatchFilter{"default", {"a"}}, 100).events.size(), 1u);
  EXPECT_EQ(hub.last_revision(), 1u);
  hub.Subscribe(WatchFilter{"default", {"a"}}, [&] { ++late_calls; });
  hub.Wake(std::move(wakeups));
  EXPECT_EQ(early_calls, 1);
  EXPECT_EQ(late_calls, 0);
  EXPECT_EQ(hub.Append({MakeEvent(2, "b")}).size(), 0u);
}

}  // namespace
}  // namespace muster
