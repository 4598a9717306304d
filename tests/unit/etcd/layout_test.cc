// The etcd key layout and the meaning of watch events (src/etcd/layout.h),
// on events built by hand as etcd sends them.
#include "etcd/layout.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "etcd/client.h"

namespace muster::etcd {
namespace {

using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::IsEmpty;

Instance Make(std::string id, std::string version = "") {
  Instance instance;
  instance.service = "svc";
  instance.id = std::move(id);
  instance.version = std::move(version);
  instance.address = "127.0.0.1:9000";
  return instance;
}

mvccpb::KeyValue Kv(const Layout& layout, const Instance& instance, int64_t create, int64_t mod,
                    int64_t version) {
  mvccpb::KeyValue kv;
  kv.set_key(layout.InstanceKey(instance));
  kv.set_value(EncodeValue(instance));
  kv.set_create_revision(create);
  kv.set_mod_revision(mod);
  kv.set_version(version);
  return kv;
}

mvccpb::Event Put(mvccpb::KeyValue kv) {
  mvccpb::Event event;
  event.set_type(mvccpb::Event::PUT);
  *event.mutable_kv() = std::move(kv);
  return event;
}

mvccpb::Event Delete(const Layout& layout, const Instance& instance, int64_t revision,
                     const mvccpb::KeyValue* previous) {
  mvccpb::Event event;
  event.set_type(mvccpb::Event::DELETE);
  event.mutable_kv()->set_key(layout.InstanceKey(instance));
  event.mutable_kv()->set_mod_revision(revision);
  if (previous != nullptr) *event.mutable_prev_kv() = *previous;
  return event;
}

mvccpb::Event Marker(const Layout& layout, std::string id, int64_t revision) {
  mvccpb::KeyValue kv;
  kv.set_key(layout.DeregisteredKey("default", "svc"));
  kv.set_value(std::move(id));
  kv.set_mod_revision(revision);
  return Put(std::move(kv));
}

TEST(LayoutTest, KeysFollowTheDocumentedLayout) {
  Layout layout("/muster/");  // a trailing slash is dropped
  EXPECT_EQ(layout.InstanceKey(Make("a", "v1")), "/muster/services/default/svc/v1/a");
  EXPECT_EQ(layout.InstanceKey(Make("a")), "/muster/services/default/svc/~/a");
  EXPECT_EQ(layout.DeregisteredKey("default", "svc"), "/muster/services/default/svc/!deregistered");
  EXPECT_EQ(layout.ServicePrefix("ns", "svc"), "/muster/services/ns/svc/");
}

TEST(LayoutTest, ParseReadsInstanceKeysAndMarkersOnly) {
  Layout layout;
  auto parsed = layout.Parse("/muster/services/ns/svc/~/a");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->ns, "ns");
  EXPECT_EQ(parsed->service, "svc");
  EXPECT_EQ(parsed->version, "");
  EXPECT_EQ(parsed->id, "a");
  EXPECT_FALSE(parsed->marker);
  auto marker = layout.Parse("/muster/services/ns/svc/!deregistered");
  ASSERT_TRUE(marker.has_value());
  EXPECT_TRUE(marker->marker);
  EXPECT_FALSE(layout.Parse("/other/services/ns/svc/v/a").has_value());
  EXPECT_FALSE(layout.Parse("/muster/services/ns/svc/v/a/extra").has_value());
  EXPECT_FALSE(layout.Parse("/muster/services/ns//v/a").has_value());
  EXPECT_FALSE(layout.Parse("/muster/services/ns/svc/v").has_value());
}

TEST(LayoutTest, DecodeTakesRevisionsFromTheKeyUnlessCarriedOver) {
  Layout layout;
  mvccpb::KeyValue kv = Kv(layout, Make("a"), 5, 9, 3);
  auto decoded = DecodeInstance(layout, kv);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->create_revision, 5u);
  EXPECT_EQ(decoded->modify_revision, 9u);

  kv.set_value(EncodeValue(Make("a"), 2));  // moved here from another version
  decoded = DecodeInstance(layout, kv);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->create_revision, 2u);

  kv.set_key(layout.InstanceKey(Make("b")));  // value of another key
  EXPECT_EQ(DecodeInstance(layout, kv).status().code(), absl::StatusCode::kInvalidArgument);
  kv.set_value("not json");
  EXPECT_EQ(DecodeInstance(layout, kv).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(LayoutTest, PutsAreRegisteredThenUpdated) {
  Layout layout;
  std::vector<mvccpb::Event> events = {Put(Kv(layout, Make("a"), 4, 4, 1)),
                                       Put(Kv(layout, Make("a"), 4, 6, 2))};
  std::vector<Change> changes = ChangesFromEvents(layout, events);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].type, ChangeType::kRegistered);
  EXPECT_EQ(changes[0].revision, 4u);
  EXPECT_EQ(changes[1].type, ChangeType::kUpdated);
  EXPECT_EQ(changes[1].revision, 6u);
  EXPECT_EQ(changes[1].instance.modify_revision, 6u);
}

TEST(LayoutTest, DeleteWithMarkerIsDeregisteredWithoutIsExpired) {
  Layout layout;
  mvccpb::KeyValue a = Kv(layout, Make("a"), 4, 4, 1);
  mvccpb::KeyValue b = Kv(layout, Make("b"), 5, 5, 1);
  std::vector<mvccpb::Event> events = {Delete(layout, Make("a"), 7, &a), Marker(layout, "a", 7),
                                       Delete(layout, Make("b"), 8, &b)};
  std::vector<Change> changes = ChangesFromEvents(layout, events);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].type, ChangeType::kDeregistered);
  EXPECT_EQ(changes[0].instance.id, "a");
  EXPECT_EQ(changes[0].instance.address, "127.0.0.1:9000");  // its last state
  EXPECT_EQ(changes[0].revision, 7u);
  EXPECT_EQ(changes[1].type, ChangeType::kExpired);
  EXPECT_EQ(changes[1].instance.id, "b");
  EXPECT_EQ(changes[1].revision, 8u);
}

TEST(LayoutTest, MarkerForAnotherInstanceDoesNotMakeADeregistration) {
  Layout layout;
  std::vector<mvccpb::Event> events = {Delete(layout, Make("a"), 7, nullptr),
                                       Marker(layout, "other", 7)};
  std::vector<Change> changes = ChangesFromEvents(layout, events);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].type, ChangeType::kExpired);
  EXPECT_EQ(changes[0].instance.id, "a");  // rebuilt from the key without prev_kv
}

TEST(LayoutTest, MoveToAnotherVersionIsOneUpdate) {
  Layout layout;
  mvccpb::KeyValue old_kv = Kv(layout, Make("a", "v1"), 4, 4, 1);
  mvccpb::KeyValue new_kv = Kv(layout, Make("a", "v2"), 9, 9, 1);
  std::vector<mvccpb::Event> events = {Delete(layout, Make("a", "v1"), 9, &old_kv), Put(new_kv)};
  std::vector<Change> changes = ChangesFromEvents(layout, events);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].type, ChangeType::kUpdated);
  EXPECT_EQ(changes[0].instance.version, "v2");
  EXPECT_EQ(changes[0].revision, 9u);
}

TEST(LayoutTest, ForeignKeysAndBadValuesAreSkipped) {
  Layout layout;
  mvccpb::KeyValue foreign;
  foreign.set_key("/elsewhere/x");
  foreign.set_mod_revision(3);
  mvccpb::KeyValue bad = Kv(layout, Make("a"), 3, 3, 1);
  bad.set_value("{");
  EXPECT_THAT(ChangesFromEvents(layout, {Put(foreign), Put(bad)}), IsEmpty());
}

TEST(PrefixEndTest, IncrementsTheLastByteBelow0xff) {
  EXPECT_EQ(PrefixEnd("/a/"), "/a0");
  EXPECT_EQ(PrefixEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(PrefixEnd(std::string("\xff", 1)), std::string(1, '\0'));
}

}  // namespace
}  // namespace muster::etcd
