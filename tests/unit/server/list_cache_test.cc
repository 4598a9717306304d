#include "server/list_cache.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace muster {
namespace {

std::shared_ptr<const std::string> Json(std::string text) {
  return std::make_shared<const std::string>(std::move(text));
}

ListFilter Healthy() {
  ListFilter f;
  f.healthy_only = true;
  return f;
}

// An answer is found only for the service revision it was made at.
TEST(ListCacheTest, FoundOnlyAtItsRevision) {
  ListCache cache(1 << 20);
  const std::string key = ListCache::KeyOf("default", "orders", ListFilter{});
  EXPECT_EQ(cache.Find(key, 7), nullptr);
  cache.Store(key, 7, Json("[1]"));
  ASSERT_NE(cache.Find(key, 7), nullptr);
  EXPECT_EQ(*cache.Find(key, 7), "[1]");
  EXPECT_EQ(cache.Find(key, 8), nullptr);  // the service changed since
  EXPECT_EQ(cache.Find(key, 6), nullptr);
}

// A newer answer replaces an older one; an older one (a slow reader that
// listed before a change) never replaces a newer one.
TEST(ListCacheTest, NewerRevisionWins) {
  ListCache cache(1 << 20);
  const std::string key = ListCache::KeyOf("default", "orders", ListFilter{});
  cache.Store(key, 5, Json("[5]"));
  cache.Store(key, 9, Json("[9]"));
  EXPECT_EQ(cache.Find(key, 5), nullptr);
  EXPECT_EQ(*cache.Find(key, 9), "[9]");
  cache.Store(key, 7, Json("[7]"));
  EXPECT_EQ(cache.Find(key, 7), nullptr);
  EXPECT_EQ(*cache.Find(key, 9), "[9]");
  EXPECT_EQ(cache.entries(), 1u);
  EXPECT_EQ(cache.bytes(), key.size() + 3);
}

// Every part of a list request makes a different key: namespace, service,
// healthy only, version and each metadata filter, with no two parts able to
// run into each other.
TEST(ListCacheTest, KeysTellFiltersApart) {
  ListFilter version;
  version.version = "1.2";
  ListFilter meta;
  meta.metadata = {{"zone", "a"}};
  ListFilter meta2;
  meta2.metadata = {{"zone", "a"}, {"rack", "7"}};
  ListFilter tricky;  // would collide with meta2 under a naive separator scheme
  tricky.metadata = {{"zone", std::string("a\0rack=7", 8)}};
  const std::vector<std::string> keys = {
      ListCache::KeyOf("default", "orders", ListFilter{}),
      ListCache::KeyOf("other", "orders", ListFilter{}),
      ListCache::KeyOf("default", "orders2", ListFilter{}),
      ListCache::KeyOf("defaulto", "rders", ListFilter{}),
      ListCache::KeyOf("default", "orders", Healthy()),
      ListCache::KeyOf("default", "orders", version),
      ListCache::KeyOf("default", "orders", meta),
      ListCache::KeyOf("default", "orders", meta2),
      ListCache::KeyOf("default", "orders", tricky),
  };
  for (size_t i = 0; i < keys.size(); ++i) {
    for (size_t j = i + 1; j < keys.size(); ++j) EXPECT_NE(keys[i], keys[j]) << i << " " << j;
  }
  EXPECT_EQ(ListCache::KeyOf("default", "orders", meta), ListCache::KeyOf("default", "orders", meta));
}

// The byte limit holds: storing past it evicts others; an answer over the
// whole limit is not kept at all; a limit of 0 keeps nothing.
TEST(ListCacheTest, StaysWithinItsLimit) {
  ListCache cache(1000);
  for (int i = 0; i < 50; ++i) {
    cache.Store(ListCache::KeyOf("default", "s" + std::to_string(i), ListFilter{}), 1,
                Json(std::string(100, 'x')));
    EXPECT_LE(cache.bytes(), 1000u);
  }
  EXPECT_GT(cache.entries(), 0u);
  EXPECT_LT(cache.entries(), 50u);
  // The newest is always kept.
  EXPECT_NE(cache.Find(ListCache::KeyOf("default", "s49", ListFilter{}), 1), nullptr);

  const std::string big = ListCache::KeyOf("default", "big", ListFilter{});
  cache.Store(big, 1, Json(std::string(2000, 'x')));
  EXPECT_EQ(cache.Find(big, 1), nullptr);
  EXPECT_LE(cache.bytes(), 1000u);

  ListCache off(0);
  off.Store(big, 1, Json("[]"));
  EXPECT_EQ(off.Find(big, 1), nullptr);
  EXPECT_EQ(off.entries(), 0u);
}

// Readers and writers on several threads: every answer found is one that was
// stored for that revision (run under TSan by make test-sanitize).
TEST(ListCacheTest, ConcurrentUse) {
  ListCache cache(64 << 10);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, t] {
      for (int i = 0; i < 2000; ++i) {
        const std::string key = ListCache::KeyOf("default", "s" + std::to_string(i % 13), ListFilter{});
        const uint64_t revision = static_cast<uint64_t>(i / 10);
        if ((i + t) % 3 == 0) cache.Store(key, revision, Json("r" + std::to_string(revision)));
        if (auto found = cache.Find(key, revision)) {
          EXPECT_EQ(*found, "r" + std::to_string(revision));
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LE(cache.bytes(), size_t{64} << 10);
}

}  // namespace
}  // namespace muster
