#include "core/lease_table.h"

#include <gtest/gtest.h>

namespace muster {
namespace {

using std::chrono::seconds;

class LeaseTableTest : public ::testing::Test {
 protected:
  ManualClock clock_;
  LeaseTable table_{&clock_};
  InstanceKey key_{"default", "orders", "o1"};
};

// A lease lapses exactly when its TTL has passed without a renewal.
TEST_F(LeaseTableTest, GrantedLeaseExpiresAfterTtl) {
  LeaseId id = table_.Grant(key_, seconds(10));
  clock_.Advance(seconds(9));
  EXPECT_TRUE(table_.TakeExpired(10).empty());
  clock_.Advance(seconds(1));
  auto expired = table_.TakeExpired(10);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].id, id);
  EXPECT_EQ(expired[0].key, key_);
  EXPECT_EQ(table_.size(), 0u);
}

// A renewal gives the lease a full TTL from the time of the renewal.
TEST_F(LeaseTableTest, RenewPostponesExpiry) {
  LeaseId id = table_.Grant(key_, seconds(10));
  clock_.Advance(seconds(8));
  ASSERT_TRUE(table_.Renew(id));
  clock_.Advance(seconds(8));
  EXPECT_TRUE(table_.TakeExpired(10).empty());
  clock_.Advance(seconds(2));
  EXPECT_EQ(table_.TakeExpired(10).size(), 1u);
}

// Many renewals within one TTL still leave exactly one expiry.
TEST_F(LeaseTableTest, FrequentRenewalsExpireOnce) {
  LeaseId id = table_.Grant(key_, seconds(3));
  for (int i = 0; i < 100; ++i) {
    clock_.Advance(std::chrono::milliseconds(100));
    ASSERT_TRUE(table_.Renew(id));
    EXPECT_TRUE(table_.TakeExpired(10).empty());
  }
  clock_.Advance(seconds(3));
  EXPECT_EQ(table_.TakeExpired(10).size(), 1u);
  EXPECT_TRUE(table_.TakeExpired(10).empty());
}

// A revoked lease never shows up as expired, and cannot be renewed.
TEST_F(LeaseTableTest, RevokedLeaseNeverExpires) {
  LeaseId id = table_.Grant(key_, seconds(1));
  table_.Revoke(id);
  clock_.Advance(seconds(5));
  EXPECT_TRUE(table_.TakeExpired(10).empty());
  EXPECT_FALSE(table_.Renew(id));
}

// Shortening the TTL of a lease makes it lapse at the new, earlier time.
TEST_F(LeaseTableTest, RefreshWithShorterTtlExpiresEarlier) {
  LeaseId id = table_.Grant(key_, seconds(60));
  ASSERT_TRUE(table_.Refresh(id, seconds(5)));
  clock_.Advance(seconds(5));
  EXPECT_EQ(table_.TakeExpired(10).size(), 1u);
}

// Once expired, a lease is gone: renewing it fails.
TEST_F(LeaseTableTest, RenewAfterExpiryFails) {
  LeaseId id = table_.Grant(key_, seconds(1));
  clock_.Advance(seconds(2));
  ASSERT_EQ(table_.TakeExpired(10).size(), 1u);
  EXPECT_FALSE(table_.Renew(id));
}

// TakeExpired hands out at most `max` leases per call, earliest first.
TEST_F(LeaseTableTest, TakeExpiredIsBoundedAndOrdered) {
  for (int i = 0; i < 5; ++i) {
    table_.Grant(InstanceKey{"default", "s", std::to_string(i)}, seconds(10 - i));
  }
  clock_.Advance(seconds(20));
  auto first = table_.TakeExpired(2);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].key.id, "4");
  EXPECT_EQ(first[1].key.id, "3");
  EXPECT_EQ(table_.TakeExpired(10).size(), 3u);
}

// Keep: a registration's lease. The same lease with the (new) TTL from now;
// a new one when there was none or it is gone; none when the TTL is 0.
TEST_F(LeaseTableTest, KeepRefreshesGrantsOrRevokes) {
  LeaseId id = table_.Keep(0, key_, seconds(10));
  ASSERT_NE(id, 0u);
  clock_.Advance(seconds(8));
  EXPECT_EQ(table_.Keep(id, key_, seconds(5)), id);  // refreshed with the new TTL
  clock_.Advance(seconds(4));
  EXPECT_TRUE(table_.TakeExpired(10).empty());
  clock_.Advance(seconds(1));
  ASSERT_EQ(table_.TakeExpired(10).size(), 1u);

  LeaseId fresh = table_.Keep(id, key_, seconds(10));  // `id` is gone: a new lease
  EXPECT_NE(fresh, id);
  EXPECT_EQ(table_.size(), 1u);

  EXPECT_EQ(table_.Keep(fresh, key_, seconds(0)), 0u);  // no TTL: no lease
  EXPECT_EQ(table_.size(), 0u);
  clock_.Advance(seconds(60));
  EXPECT_TRUE(table_.TakeExpired(10).empty());
}

}  // namespace
}  // namespace muster
