#include "muster/instance.h"

#include <gtest/gtest.h>

namespace muster {
namespace {

Instance Sample() {
  Instance in;
  in.service = "orders";
  in.id = "orders-1";
  in.version = "1.0";
  in.address = "10.0.0.1:80";
  in.metadata = {{"zone", "a"}};
  return in;
}

// A new instance has the documented defaults.
TEST(InstanceTest, DefaultsMatchTheApi) {
  Instance in;
  EXPECT_EQ(in.ns, "default");
  EXPECT_EQ(in.status, InstanceStatus::kEnabled);
  EXPECT_EQ(in.weight, 100u);
  EXPECT_EQ(in.ttl_seconds, 30u);
  EXPECT_EQ(in.health, Health::kPassing);
  EXPECT_EQ(in.create_revision, 0u);
  EXPECT_EQ(in.modify_revision, 0u);
}

// Status and health print as their JSON spellings.
TEST(InstanceTest, EnumsPrintAsJsonSpellings) {
  EXPECT_EQ(ToString(InstanceStatus::kEnabled), "enabled");
  EXPECT_EQ(ToString(InstanceStatus::kDisabled), "disabled");
  EXPECT_EQ(ToString(Health::kPassing), "passing");
  EXPECT_EQ(ToString(Health::kWarning), "warning");
  EXPECT_EQ(ToString(Health::kCritical), "critical");
}

// Only the two exact spellings parse as a status.
TEST(InstanceTest, ParsesOnlyExactStatusSpellings) {
  EXPECT_EQ(ParseInstanceStatus("enabled"), InstanceStatus::kEnabled);
  EXPECT_EQ(ParseInstanceStatus("disabled"), InstanceStatus::kDisabled);
  EXPECT_EQ(ParseInstanceStatus("Enabled"), std::nullopt);
  EXPECT_EQ(ParseInstanceStatus(""), std::nullopt);
  EXPECT_EQ(ParseInstanceStatus("paused"), std::nullopt);
}

// SameSpec ignores what the registry fills in: revisions and health.
TEST(InstanceTest, SameSpecIgnoresRevisionsAndHealth) {
  Instance a = Sample();
  Instance b = Sample();
  b.create_revision = 3;
  b.modify_revision = 9;
  b.health = Health::kCritical;
  EXPECT_TRUE(a.SameSpec(b));
}

// SameSpec sees a change in any user-supplied field.
TEST(InstanceTest, SameSpecSeesEveryUserField) {
  const Instance base = Sample();
  auto differs = [&](auto mutate) {
    Instance other = base;
    mutate(other);
    return !base.SameSpec(other);
  };
  EXPECT_TRUE(differs([](Instance& i) { i.ns = "other"; }));
  EXPECT_TRUE(differs([](Instance& i) { i.service = "other"; }));
  EXPECT_TRUE(differs([](Instance& i) { i.id = "other"; }));
  EXPECT_TRUE(differs([](Instance& i) { i.version = "2.0"; }));
  EXPECT_TRUE(differs([](Instance& i) { i.address = "10.0.0.2:80"; }));
  EXPECT_TRUE(differs([](Instance& i) { i.status = InstanceStatus::kDisabled; }));
  EXPECT_TRUE(differs([](Instance& i) { i.weight = 5; }));
  EXPECT_TRUE(differs([](Instance& i) { i.metadata["zone"] = "b"; }));
  EXPECT_TRUE(differs([](Instance& i) { i.ttl_seconds = 0; }));
}

// The key of an instance is its namespace, service and id.
TEST(InstanceTest, KeyOfIsNamespaceServiceAndId) {
  Instance in = Sample();
  in.ns = "team-a";
  EXPECT_EQ(KeyOf(in), (InstanceKey{"team-a", "orders", "orders-1"}));
  Instance other = in;
  other.ns = "team-b";
  EXPECT_FALSE(KeyOf(in) == KeyOf(other));
}

}  // namespace
}  // namespace muster
