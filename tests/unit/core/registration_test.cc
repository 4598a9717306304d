#include "core/registration.h"

#include <gtest/gtest.h>

namespace muster {
namespace {

Instance Incoming() {
  Instance in;
  in.service = "orders";
  in.id = "o1";
  in.version = "1.0";
  in.address = "10.0.0.1:80";
  in.metadata = {{"zone", "a"}};
  return in;
}

Check HttpCheck(std::string id, std::string target = "/health") {
  Check c;
  c.id = std::move(id);
  c.type = CheckType::kHttp;
  c.target = std::move(target);
  return c;
}

Check TtlCheck(std::string id) {
  Check c;
  c.id = std::move(id);
  c.type = CheckType::kTtl;
  return c;
}

// What a registry holds after storing `in` at `revision` over nothing.
Instance StoredAt(Instance in, uint64_t revision) {
  Registration r = DecideRegistration(nullptr, std::move(in));
  r.Stamp(revision);
  return *r.stored;
}

// Nothing stored: a new instance, its revisions both the write's.
TEST(RegistrationTest, NothingStoredCreates) {
  Registration r = DecideRegistration(nullptr, Incoming());
  EXPECT_EQ(r.kind, RegistrationKind::kCreate);
  ASSERT_TRUE(r.stored.has_value());
  EXPECT_TRUE(r.stored->SameSpec(Incoming()));
  EXPECT_EQ(r.stored->health, Health::kPassing);
  r.Stamp(7);
  EXPECT_EQ(r.stored->create_revision, 7u);
  EXPECT_EQ(r.stored->modify_revision, 7u);
}

// Revisions a registration carries are not the registry's: they are dropped.
TEST(RegistrationTest, IncomingRevisionsAreIgnored) {
  Instance in = Incoming();
  in.create_revision = 99;
  in.modify_revision = 100;
  Registration r = DecideRegistration(nullptr, in);
  EXPECT_EQ(r.stored->create_revision, 0u);
  EXPECT_EQ(r.stored->modify_revision, 0u);
  r.Stamp(3);
  EXPECT_EQ(r.stored->create_revision, 3u);
  EXPECT_EQ(r.stored->modify_revision, 3u);
}

// The same spec again stores nothing: only the lease is renewed. Stored
// revisions, health and check states do not make it differ.
TEST(RegistrationTest, SameSpecRenewsOnly) {
  Instance in = Incoming();
  in.checks = {HttpCheck("web")};
  Instance current = StoredAt(in, 5);
  current.checks[0].status = Health::kPassing;
  current.checks[0].output = "HTTP 200";
  current.health = Health::kPassing;
  Registration r = DecideRegistration(&current, in);
  EXPECT_EQ(r.kind, RegistrationKind::kRenewOnly);
  EXPECT_FALSE(r.stored.has_value());
  r.Stamp(9);  // no-op
  EXPECT_FALSE(r.stored.has_value());
}

// A changed spec updates: the create_revision stays, the modify_revision is
// the write's.
TEST(RegistrationTest, ChangedSpecUpdatesKeepingCreateRevision) {
  Instance current = StoredAt(Incoming(), 5);
  for (auto change : std::initializer_list<void (*)(Instance&)>{
           [](Instance& in) { in.address = "10.0.0.2:80"; },
           [](Instance& in) { in.version = "2.0"; },
           [](Instance& in) { in.weight = 7; },
           [](Instance& in) { in.metadata["zone"] = "b"; },
           [](Instance& in) { in.ttl_seconds = 10; },
           [](Instance& in) { in.status = InstanceStatus::kDisabled; },
           [](Instance& in) { in.checks = {TtlCheck("ttl")}; },
       }) {
    Instance in = Incoming();
    change(in);
    Registration r = DecideRegistration(&current, in);
    ASSERT_EQ(r.kind, RegistrationKind::kUpdate);
    ASSERT_TRUE(r.stored.has_value());
    EXPECT_TRUE(r.stored->SameSpec(in));
    EXPECT_EQ(r.stored->create_revision, 5u);
    r.Stamp(8);
    EXPECT_EQ(r.stored->create_revision, 5u);
    EXPECT_EQ(r.stored->modify_revision, 8u);
  }
}

// On update, a check kept with the same spec keeps its state; a new or
// changed active check starts critical and unchecked; a ttl check is
// passing. Health is the worst of them.
TEST(RegistrationTest, UpdateAdoptsCheckStatesOfKeptChecks) {
  Instance in = Incoming();
  in.checks = {HttpCheck("kept"), HttpCheck("changed", "/a")};
  Instance current = StoredAt(in, 5);
  for (Check& c : current.checks) {
    c.status = Health::kPassing;
    c.output = "HTTP 200";
  }
  current.health = Health::kPassing;

  Instance next = in;
  next.address = "10.0.0.2:80";
  next.checks = {HttpCheck("kept"), HttpCheck("changed", "/b"), TtlCheck("ttl")};
  Registration r = DecideRegistration(&current, next);
  ASSERT_EQ(r.kind, RegistrationKind::kUpdate);
  const Instance& stored = *r.stored;
  ASSERT_EQ(stored.checks.size(), 3u);
  EXPECT_EQ(stored.checks[0].status, Health::kPassing);
  EXPECT_EQ(stored.checks[0].output, "HTTP 200");
  EXPECT_EQ(stored.checks[1].status, Health::kCritical);
  EXPECT_EQ(stored.checks[1].output, "");
  EXPECT_EQ(stored.checks[2].status, Health::kPassing);
  EXPECT_EQ(stored.health, Health::kCritical);

  // With the changed check passing too, the instance is passing.
  current.checks[1].target = "/b";
  r = DecideRegistration(&current, next);
  EXPECT_EQ(r.stored->health, Health::kPassing);
}

// A new instance's states come from its checks alone: active checks start
// critical, ttl checks passing, whatever states the registration carried.
TEST(RegistrationTest, CreateSetsInitialCheckStates) {
  Instance in = Incoming();
  in.checks = {TtlCheck("ttl"), HttpCheck("web")};
  in.checks[1].status = Health::kPassing;  // not the registrant's to say
  in.checks[1].output = "forged";
  in.health = Health::kPassing;
  Registration r = DecideRegistration(nullptr, in);
  ASSERT_EQ(r.kind, RegistrationKind::kCreate);
  EXPECT_EQ(r.stored->checks[0].status, Health::kPassing);
  EXPECT_EQ(r.stored->checks[1].status, Health::kCritical);
  EXPECT_EQ(r.stored->checks[1].output, "");
  EXPECT_EQ(r.stored->health, Health::kCritical);

  Instance ttl_only = Incoming();
  ttl_only.checks = {TtlCheck("ttl")};
  EXPECT_EQ(DecideRegistration(nullptr, ttl_only).stored->health, Health::kPassing);
}

// A stale health claimed by the registration is replaced by the derived one.
TEST(RegistrationTest, HealthIsDerivedNotTaken) {
  Instance in = Incoming();
  in.health = Health::kCritical;
  EXPECT_EQ(DecideRegistration(nullptr, in).stored->health, Health::kPassing);
}

// One NotFound message for every backend; the namespace only when it is not
// the default one.
TEST(RegistrationTest, NotRegisteredErrorNamesTheInstance) {
  absl::Status plain = NotRegisteredError(InstanceKey{"default", "orders", "o-1"});
  EXPECT_EQ(plain.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(plain.message(), "instance o-1 of service orders is not registered");
  absl::Status other = NotRegisteredError(InstanceKey{"staging", "orders", "o-1"});
  EXPECT_EQ(other.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(other.message(), "instance o-1 of service orders in namespace staging is not registered");
}

}  // namespace
}  // namespace muster
