// client::SubscriptionView: how a version- or tag-filtered subscription sees changes.
#include "client/subscription_view.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "unit/registry/registry_conformance.h"

namespace muster::client {
namespace {

using testing::Query;
using testing::TestInstance;

Change ChangeOf(ChangeType type, const std::string& id, const std::string& version,
                uint64_t revision) {
  return Change{revision, type, TestInstance(id, "svc", version)};
}

// Without a version every change passes unchanged.
TEST(SubscriptionViewTest, WithoutVersionEverythingPasses) {
  SubscriptionView view(Query("svc"));
  Change c = ChangeOf(ChangeType::kUpdated, "a", "v1", 3);
  auto seen = view.Apply(c);
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->type, ChangeType::kUpdated);
  EXPECT_EQ(seen->revision, 3u);
}

// Instances of other versions are not seen at all.
TEST(SubscriptionViewTest, OtherVersionsAreInvisible) {
  SubscriptionView view(Query("svc", "v2"));
  view.Reset({});
  EXPECT_FALSE(view.Apply(ChangeOf(ChangeType::kRegistered, "a", "v1", 1)));
  EXPECT_FALSE(view.Apply(ChangeOf(ChangeType::kUpdated, "a", "v1", 2)));
  EXPECT_FALSE(view.Apply(ChangeOf(ChangeType::kDeregistered, "a", "v1", 3)));
  EXPECT_FALSE(view.Apply(ChangeOf(ChangeType::kExpired, "a", "v1", 4)));
}

// Moving into the version is a registration, moving out a deregistration.
TEST(SubscriptionViewTest, MovesInAndOutBecomeRegisterAndDeregister) {
  SubscriptionView view(Query("svc", "v2"));
  view.Reset({TestInstance("a", "svc", "v2"), TestInstance("b", "svc", "v1")});
  auto in = view.Apply(ChangeOf(ChangeType::kUpdated, "b", "v2", 5));
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(in->type, ChangeType::kRegistered);
  auto out = view.Apply(ChangeOf(ChangeType::kUpdated, "a", "v3", 6));
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->type, ChangeType::kDeregistered);
  EXPECT_EQ(out->instance.version, "v3");  // its new state
  auto update = view.Apply(ChangeOf(ChangeType::kUpdated, "b", "v2", 7));
  ASSERT_TRUE(update.has_value());
  EXPECT_EQ(update->type, ChangeType::kUpdated);
  auto expired = view.Apply(ChangeOf(ChangeType::kExpired, "b", "v2", 8));
  ASSERT_TRUE(expired.has_value());
  EXPECT_EQ(expired->type, ChangeType::kExpired);
  EXPECT_FALSE(view.Apply(ChangeOf(ChangeType::kDeregistered, "a", "v3", 9)));
}

// With tags, an instance is in while it carries every one: gaining the last
// is a registration, losing one a deregistration showing its new tags.
TEST(SubscriptionViewTest, TagsDecideLikeTheVersion) {
  ServiceQuery query = Query("svc");
  query.tags = {"eu", "canary"};
  SubscriptionView view(query);
  Instance both = TestInstance("a");
  both.tags = {"canary", "eu", "extra"};
  Instance one = TestInstance("b");
  one.tags = {"eu"};
  view.Reset({both, one});
  EXPECT_FALSE(view.Apply(Change{2, ChangeType::kUpdated, one}));  // still out
  one.tags.push_back("canary");
  auto in = view.Apply(Change{3, ChangeType::kUpdated, one});
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(in->type, ChangeType::kRegistered);
  both.tags = {"eu"};
  auto out = view.Apply(Change{4, ChangeType::kUpdated, both});
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->type, ChangeType::kDeregistered);
  EXPECT_THAT(out->instance.tags, ::testing::ElementsAre("eu"));
}

}  // namespace
}  // namespace muster::client
