// The native API of musterd over loopback, as docs/api.md describes it:
// register, deregister, heartbeat, list, services, namespaces, revisions.
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/json_codec.h"
#include "integration/musterd_fixture.h"

namespace muster::testing {
namespace {

namespace json = boost::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class ApiTest : public MusterdTest {
 protected:
  // The instance in a register answer.
  Instance InstanceOf(const wire::HttpResponse& r) {
    auto in = InstanceFromJson(JsonOf(r));
    if (!in.ok()) {
      ADD_FAILURE() << "not an instance (" << in.status() << "): " << r.body;
      return Instance{};
    }
    return *std::move(in);
  }

  // {"revision": N} of a deregister answer.
  uint64_t RevisionOf(const wire::HttpResponse& r) {
    json::value v = JsonOf(r);
    if (!v.is_object() || !v.as_object().contains("revision")) {
      ADD_FAILURE() << "no revision in " << r.body;
      return 0;
    }
    return U64(v.as_object().at("revision"));
  }

  // {"revision": N, "services": [...]} of GET /api/v1/services.
  json::value Services(const std::string& query = "") {
    std::string target = "/api/v1/services";
    if (!query.empty()) target += "?" + query;
    wire::HttpResponse r = Must(client().Get(target));
    EXPECT_EQ(r.status, 200) << r.body;
    return JsonOf(r);
  }
};

// A new instance answers 201 with the stored instance, defaults filled in.
TEST_F(ApiTest, RegisterNewInstanceAnswers201WithStoredInstance) {
  wire::HttpResponse r = Register(
      "orders", "orders-1",
      RegisterBody("10.1.2.3:8080", {{"version", "1.4.2"}, {"metadata", {{"zone", "eu-1"}}}}));
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_THAT(r.Header("Content-Type").value_or(""), HasSubstr("application/json"));
  Instance in = InstanceOf(r);
  EXPECT_EQ(in.id, "orders-1");
  EXPECT_EQ(in.service, "orders");
  EXPECT_EQ(in.ns, "default");
  EXPECT_EQ(in.version, "1.4.2");
  EXPECT_EQ(in.address, "10.1.2.3:8080");
  EXPECT_EQ(in.status, InstanceStatus::kEnabled);
  EXPECT_EQ(in.weight, 100u);
  EXPECT_EQ(in.metadata, (std::map<std::string, std::string>{{"zone", "eu-1"}}));
  EXPECT_EQ(in.ttl_seconds, 30u);
  EXPECT_EQ(in.health, Health::kPassing);
  EXPECT_GT(in.create_revision, 0u);
  EXPECT_EQ(in.modify_revision, in.create_revision);
}

// Replacing an instance answers 200; modify_revision moves, create_revision stays.
TEST_F(ApiTest, ReplacingInstanceAnswers200AndMovesModifyRevision) {
  wire::HttpResponse first = Register("orders", "orders-1", RegisterBody("10.1.2.3:8080"));
  ASSERT_EQ(first.status, 201) << first.body;
  Instance before = InstanceOf(first);

  wire::HttpResponse second =
      Register("orders", "orders-1", RegisterBody("10.1.2.3:8080", {{"weight", 5}}));
  ASSERT_EQ(second.status, 200) << second.body;
  Instance after = InstanceOf(second);
  EXPECT_EQ(after.weight, 5u);
  EXPECT_EQ(after.create_revision, before.create_revision);
  EXPECT_GT(after.modify_revision, before.modify_revision);

  ListResult list = List("orders");
  ASSERT_EQ(list.instances.size(), 1u);
  EXPECT_EQ(list.instances[0].weight, 5u);
  EXPECT_EQ(list.instances[0].modify_revision, after.modify_revision);
}

// Registering exactly the same instance again creates no revision.
TEST_F(ApiTest, IdenticalReRegisterKeepsRevisions) {
  std::string body = RegisterBody("10.1.2.3:8080", {{"version", "1.0"}, {"weight", 7}});
  wire::HttpResponse first = Register("orders", "orders-1", body);
  ASSERT_EQ(first.status, 201) << first.body;
  Instance before = InstanceOf(first);
  uint64_t revision_before = CurrentRevision();

  wire::HttpResponse again = Register("orders", "orders-1", body);
  EXPECT_EQ(again.status, 200) << again.body;
  Instance after = InstanceOf(again);
  EXPECT_EQ(after.create_revision, before.create_revision);
  EXPECT_EQ(after.modify_revision, before.modify_revision);
  EXPECT_EQ(CurrentRevision(), revision_before);
  EXPECT_EQ(List("orders").revision, revision_before);
}

// Every change raises the one registry-wide revision by exactly one.
TEST_F(ApiTest, EveryChangeRaisesRevisionByOne) {
  wire::HttpResponse a = Register("orders", "a", RegisterBody("10.0.0.1:80"));
  ASSERT_EQ(a.status, 201) << a.body;
  uint64_t base = InstanceOf(a).create_revision;

  wire::HttpResponse b = Register("billing", "b", RegisterBody("10.0.0.2:80"));
  ASSERT_EQ(b.status, 201) << b.body;
  EXPECT_EQ(InstanceOf(b).create_revision, base + 1);

  wire::HttpResponse a2 = Register("orders", "a", RegisterBody("10.0.0.1:81"));
  ASSERT_EQ(a2.status, 200) << a2.body;
  EXPECT_EQ(InstanceOf(a2).modify_revision, base + 2);

  wire::HttpResponse gone = Deregister("billing", "b");
  ASSERT_EQ(gone.status, 200) << gone.body;
  EXPECT_EQ(RevisionOf(gone), base + 3);
  EXPECT_EQ(CurrentRevision(), base + 3);
}

// Deregister answers 200 with the new revision, and the instance is gone.
TEST_F(ApiTest, DeregisterAnswers200AndRemovesInstance) {
  wire::HttpResponse reg = Register("orders", "orders-1", RegisterBody("10.1.2.3:8080"));
  ASSERT_EQ(reg.status, 201) << reg.body;
  uint64_t registered_at = InstanceOf(reg).modify_revision;

  wire::HttpResponse r = Deregister("orders", "orders-1");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_GT(RevisionOf(r), registered_at);
  ListResult list = List("orders");
  EXPECT_THAT(list.ids(), IsEmpty());
  EXPECT_EQ(list.revision, RevisionOf(r));
}

// A second deregister of the same instance is 404 not_found.
TEST_F(ApiTest, DeregisterUnknownInstanceIsNotFound) {
  ASSERT_EQ(Register("orders", "orders-1", RegisterBody("10.1.2.3:8080")).status, 201);
  ASSERT_EQ(Deregister("orders", "orders-1").status, 200);
  wire::HttpResponse again = Deregister("orders", "orders-1");
  EXPECT_EQ(again.status, 404) << again.body;
  EXPECT_EQ(ErrorCodeOf(again), "not_found") << again.body;
  wire::HttpResponse never = Deregister("orders", "never-registered");
  EXPECT_EQ(never.status, 404) << never.body;
  EXPECT_EQ(ErrorCodeOf(never), "not_found") << never.body;
}

// A heartbeat answers the id and TTL, by PUT or POST, and creates no revision.
TEST_F(ApiTest, HeartbeatAnswersIdAndTtl) {
  ASSERT_EQ(Register("orders", "orders-1", RegisterBody("10.1.2.3:8080", {{"ttl_seconds", 20}}))
                .status,
            201);
  uint64_t revision = CurrentRevision();

  wire::HttpResponse put = Heartbeat("orders", "orders-1");
  ASSERT_EQ(put.status, 200) << put.body;
  json::value v = JsonOf(put);
  ASSERT_TRUE(v.is_object()) << put.body;
  EXPECT_EQ(v.as_object().at("id").as_string(), "orders-1");
  EXPECT_EQ(U64(v.as_object().at("ttl_seconds")), 20u);

  wire::HttpResponse post = Must(client().Post(HeartbeatPath("orders", "orders-1"), ""));
  EXPECT_EQ(post.status, 200) << post.body;
  EXPECT_EQ(CurrentRevision(), revision);
}

// A heartbeat for an unknown instance is 404: the client must register again.
TEST_F(ApiTest, HeartbeatUnknownInstanceIsNotFound) {
  wire::HttpResponse r = Heartbeat("orders", "nobody");
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_EQ(ErrorCodeOf(r), "not_found") << r.body;

  ASSERT_EQ(Register("orders", "orders-1", RegisterBody("10.1.2.3:8080")).status, 201);
  ASSERT_EQ(Deregister("orders", "orders-1").status, 200);
  wire::HttpResponse after = Heartbeat("orders", "orders-1");
  EXPECT_EQ(after.status, 404) << after.body;
  EXPECT_EQ(ErrorCodeOf(after), "not_found") << after.body;
}

// A list is sorted by id and its body revision equals X-Muster-Index.
TEST_F(ApiTest, ListIsSortedByIdAndCarriesIndexHeader) {
  for (const char* id : {"orders-c", "orders-a", "orders-b"}) {
    ASSERT_EQ(Register("orders", id, RegisterBody("10.0.0.1:80")).status, 201);
  }
  ListResult list = List("orders");
  EXPECT_THAT(list.ids(), ElementsAre("orders-a", "orders-b", "orders-c"));
  ASSERT_TRUE(list.index_header.has_value()) << "X-Muster-Index missing or not a number";
  EXPECT_EQ(*list.index_header, list.revision);
  EXPECT_EQ(list.revision, CurrentRevision());
}

// musterd keeps a list's JSON while its service is unchanged
// (--list-cache-mb): a repeated list answers the same instances but the
// registry revision of now, and every kind of change to the service shows in
// the next list, filtered or not.
TEST_F(ApiTest, RepeatedListsFollowEveryChange) {
  ASSERT_EQ(Register("orders", "a", RegisterBody("10.0.0.1:80")).status, 201);
  ListResult first = List("orders");
  ASSERT_THAT(first.ids(), ElementsAre("a"));
  EXPECT_EQ(List("orders", "healthy=true").ids(), first.ids());

  // A change elsewhere: the same instances, at the registry's new revision.
  ASSERT_EQ(Register("billing", "x", RegisterBody("10.0.0.9:80")).status, 201);
  ListResult again = List("orders");
  EXPECT_THAT(again.ids(), ElementsAre("a"));
  EXPECT_EQ(again.revision, first.revision + 1);
  EXPECT_EQ(again.index_header, again.revision);

  // An update, an addition, a disable and a removal each show at once.
  ASSERT_EQ(Register("orders", "a", RegisterBody("10.0.0.2:80")).status, 200);
  ListResult updated = List("orders");
  ASSERT_THAT(updated.ids(), ElementsAre("a"));
  EXPECT_EQ(updated.instances[0].address, "10.0.0.2:80");
  ASSERT_EQ(Register("orders", "b", RegisterBody("10.0.0.3:80")).status, 201);
  EXPECT_THAT(List("orders").ids(), ElementsAre("a", "b"));
  EXPECT_THAT(List("orders", "healthy=true").ids(), ElementsAre("a", "b"));
  ASSERT_EQ(Register("orders", "b", RegisterBody("10.0.0.3:80", {{"status", "disabled"}})).status,
            200);
  EXPECT_THAT(List("orders", "healthy=true").ids(), ElementsAre("a"));
  EXPECT_THAT(List("orders").ids(), ElementsAre("a", "b"));
  ASSERT_EQ(Deregister("orders", "a").status, 200);
  ListResult last = List("orders");
  EXPECT_THAT(last.ids(), ElementsAre("b"));
  EXPECT_EQ(last.revision, CurrentRevision());
}

// Ids sort as byte strings, so "b-10" comes before "b-9".
TEST_F(ApiTest, ListSortsIdsAsStrings) {
  for (const char* id : {"b-9", "b-10", "B-1", "a"}) {
    ASSERT_EQ(Register("orders", id, RegisterBody("10.0.0.1:80")).status, 201);
  }
  EXPECT_THAT(List("orders").ids(), ElementsAre("B-1", "a", "b-10", "b-9"));
}

// ?version= keeps only instances of that version.
TEST_F(ApiTest, ListFiltersByVersion) {
  ASSERT_EQ(Register("orders", "a", RegisterBody("10.0.0.1:80", {{"version", "1.0"}})).status, 201);
  ASSERT_EQ(Register("orders", "b", RegisterBody("10.0.0.2:80", {{"version", "2.0"}})).status, 201);
  ASSERT_EQ(Register("orders", "c", RegisterBody("10.0.0.3:80", {{"version", "1.0"}})).status, 201);
  ASSERT_EQ(Register("orders", "d", RegisterBody("10.0.0.4:80")).status, 201);
  EXPECT_THAT(List("orders", "version=1.0").ids(), ElementsAre("a", "c"));
  EXPECT_THAT(List("orders", "version=2.0").ids(), ElementsAre("b"));
  EXPECT_THAT(List("orders", "version=3.0").ids(), IsEmpty());
}

// healthy=true leaves disabled instances out; false or absent lists all.
TEST_F(ApiTest, ListHealthyExcludesDisabledInstances) {
  ASSERT_EQ(Register("orders", "on", RegisterBody("10.0.0.1:80")).status, 201);
  ASSERT_EQ(
      Register("orders", "off", RegisterBody("10.0.0.2:80", {{"status", "disabled"}})).status,
      201);
  EXPECT_THAT(List("orders", "healthy=true").ids(), ElementsAre("on"));
  EXPECT_THAT(List("orders", "healthy=false").ids(), ElementsAre("off", "on"));
  ListResult all = List("orders");
  ASSERT_THAT(all.ids(), ElementsAre("off", "on"));
  EXPECT_EQ(all.instances[0].status, InstanceStatus::kDisabled);

  // Enabling it again brings it back into the healthy set.
  ASSERT_EQ(
      Register("orders", "off", RegisterBody("10.0.0.2:80", {{"status", "enabled"}})).status, 200);
  EXPECT_THAT(List("orders", "healthy=true").ids(), ElementsAre("off", "on"));
}

// meta.KEY=VALUE filters are repeatable and must all match.
TEST_F(ApiTest, ListFiltersByMetadata) {
  ASSERT_EQ(Register("orders", "a",
                     RegisterBody("10.0.0.1:80", {{"metadata", {{"zone", "eu-1"}, {"tier", "web"}}}}))
                .status,
            201);
  ASSERT_EQ(Register("orders", "b",
                     RegisterBody("10.0.0.2:80", {{"metadata", {{"zone", "eu-1"}, {"tier", "db"}}}}))
                .status,
            201);
  ASSERT_EQ(Register("orders", "c",
                     RegisterBody("10.0.0.3:80", {{"metadata", {{"zone", "us-1"}, {"tier", "web"}}}}))
                .status,
            201);
  ASSERT_EQ(Register("orders", "d", RegisterBody("10.0.0.4:80")).status, 201);
  EXPECT_THAT(List("orders", "meta.zone=eu-1").ids(), ElementsAre("a", "b"));
  EXPECT_THAT(List("orders", "meta.zone=eu-1&meta.tier=web").ids(), ElementsAre("a"));
  EXPECT_THAT(List("orders", "meta.tier=web").ids(), ElementsAre("a", "c"));
  EXPECT_THAT(List("orders", "meta.zone=ap-1").ids(), IsEmpty());
  EXPECT_THAT(List("orders", "meta.rack=r1").ids(), IsEmpty());
}

// ?tag= filters by tags: repeated, every one must be carried; the answer
// shows each instance's tags in the order registered, and the cached list of
// one filter is not served for another.
TEST_F(ApiTest, ListFiltersByEveryTag) {
  ASSERT_EQ(Register("orders", "a", RegisterBody("10.0.0.1:80", {{"tags", {"primary", "eu west"}}}))
                .status,
            201);
  ASSERT_EQ(Register("orders", "b", RegisterBody("10.0.0.2:80", {{"tags", {"eu west"}}})).status,
            201);
  ASSERT_EQ(Register("orders", "c", RegisterBody("10.0.0.3:80")).status, 201);
  EXPECT_THAT(List("orders").ids(), ElementsAre("a", "b", "c"));
  EXPECT_THAT(List("orders", "tag=eu%20west").ids(), ElementsAre("a", "b"));
  EXPECT_THAT(List("orders", "tag=eu%20west&tag=primary").ids(), ElementsAre("a"));
  EXPECT_THAT(List("orders", "tag=primary&tag=nope").ids(), IsEmpty());
  EXPECT_THAT(List("orders", "tag=eu%20west").ids(), ElementsAre("a", "b"));

  const wire::HttpResponse r = Must(client().Get(ListPath("orders", "tag=primary")));
  const boost::json::value v = JsonOf(r);
  const boost::json::array& instances = v.at("instances").as_array();
  ASSERT_EQ(instances.size(), 1u);
  EXPECT_EQ(boost::json::serialize(instances[0].at("tags")), R"(["primary","eu west"])");
}

// Filters combine: version, health and metadata all apply.
TEST_F(ApiTest, ListCombinesFilters) {
  ASSERT_EQ(Register("orders", "a",
                     RegisterBody("10.0.0.1:80",
                                  {{"version", "1.0"}, {"metadata", {{"zone", "eu-1"}}}}))
                .status,
            201);
  ASSERT_EQ(Register("orders", "b",
                     RegisterBody("10.0.0.2:80", {{"version", "1.0"},
                                                  {"status", "disabled"},
                                                  {"metadata", {{"zone", "eu-1"}}}}))
                .status,
            201);
  ASSERT_EQ(Register("orders", "c",
                     RegisterBody("10.0.0.3:80",
                                  {{"version", "2.0"}, {"metadata", {{"zone", "eu-1"}}}}))
                .status,
            201);
  EXPECT_THAT(List("orders", "version=1.0&healthy=true&meta.zone=eu-1").ids(), ElementsAre("a"));
}

// An unknown service lists as empty with 200, not 404.
TEST_F(ApiTest, UnknownServiceListsEmpty) {
  ASSERT_EQ(Register("orders", "a", RegisterBody("10.0.0.1:80")).status, 201);
  ListResult list = List("nobody-here");
  EXPECT_EQ(list.status, 200);
  EXPECT_THAT(list.ids(), IsEmpty());
  EXPECT_EQ(list.revision, CurrentRevision());
}

// Services are listed by name with instance and healthy counts.
TEST_F(ApiTest, ServicesListsCountsSortedByName) {
  ASSERT_EQ(Register("orders", "o1", RegisterBody("10.0.0.1:80")).status, 201);
  ASSERT_EQ(
      Register("orders", "o2", RegisterBody("10.0.0.2:80", {{"status", "disabled"}})).status, 201);
  ASSERT_EQ(Register("orders", "o3", RegisterBody("10.0.0.3:80")).status, 201);
  ASSERT_EQ(Register("billing", "b1", RegisterBody("10.0.0.4:80")).status, 201);

  json::value v = Services();
  ASSERT_TRUE(v.is_object());
  EXPECT_EQ(U64(v.as_object().at("revision")), CurrentRevision());
  const json::array& services = v.as_object().at("services").as_array();
  ASSERT_EQ(services.size(), 2u) << json::serialize(v);
  EXPECT_EQ(services[0].at("name").as_string(), "billing");
  EXPECT_EQ(U64(services[0].at("instances")), 1u);
  EXPECT_EQ(U64(services[0].at("healthy")), 1u);
  EXPECT_EQ(services[1].at("name").as_string(), "orders");
  EXPECT_EQ(U64(services[1].at("instances")), 3u);
  EXPECT_EQ(U64(services[1].at("healthy")), 2u);
}

// A service whose last instance left is not listed.
TEST_F(ApiTest, ServiceWithoutInstancesIsNotListed) {
  ASSERT_EQ(Register("orders", "o1", RegisterBody("10.0.0.1:80")).status, 201);
  ASSERT_EQ(Register("billing", "b1", RegisterBody("10.0.0.2:80")).status, 201);
  ASSERT_EQ(Deregister("billing", "b1").status, 200);
  json::value v = Services();
  ASSERT_TRUE(v.is_object());
  const json::array& services = v.as_object().at("services").as_array();
  ASSERT_EQ(services.size(), 1u) << json::serialize(v);
  EXPECT_EQ(services[0].at("name").as_string(), "orders");
}

// An empty registry lists no services.
TEST_F(ApiTest, EmptyRegistryListsNoServices) {
  json::value v = Services();
  ASSERT_TRUE(v.is_object());
  EXPECT_TRUE(v.as_object().at("services").as_array().empty()) << json::serialize(v);
}

// Services in different namespaces never see each other.
TEST_F(ApiTest, NamespacesIsolateServices) {
  ASSERT_EQ(Register("orders", "a", RegisterBody("10.0.0.1:80"), "namespace=team-a").status, 201);
  ASSERT_EQ(Register("orders", "b", RegisterBody("10.0.0.2:80")).status, 201);
  // The same id in another namespace is another instance.
  ASSERT_EQ(Register("orders", "b", RegisterBody("10.0.0.3:80"), "namespace=team-a").status, 201);

  EXPECT_THAT(List("orders").ids(), ElementsAre("b"));
  EXPECT_EQ(List("orders").instances.at(0).address, "10.0.0.2:80");
  ListResult team_a = List("orders", "namespace=team-a");
  EXPECT_THAT(team_a.ids(), ElementsAre("a", "b"));
  for (const Instance& in : team_a.instances) EXPECT_EQ(in.ns, "team-a");
  EXPECT_THAT(List("orders", "namespace=team-b").ids(), IsEmpty());

  json::value services = Services("namespace=team-b");
  ASSERT_TRUE(services.is_object());
  EXPECT_TRUE(services.as_object().at("services").as_array().empty());

  // Deregister and heartbeat only reach their own namespace.
  EXPECT_EQ(Deregister("orders", "a").status, 404);
  EXPECT_EQ(Heartbeat("orders", "a").status, 404);
  EXPECT_EQ(Heartbeat("orders", "a", "namespace=team-a").status, 200);
  EXPECT_EQ(Deregister("orders", "a", "namespace=team-a").status, 200);
  EXPECT_THAT(List("orders", "namespace=team-a").ids(), ElementsAre("b"));
  EXPECT_THAT(List("orders").ids(), ElementsAre("b"));
}

// A body may repeat the path's id, service and namespace.
TEST_F(ApiTest, RegisterBodyMayRepeatPathIdentity) {
  wire::HttpResponse r = Register(
      "orders", "orders-1",
      RegisterBody("10.0.0.1:80",
                   {{"id", "orders-1"}, {"service", "orders"}, {"namespace", "team-a"}}),
      "namespace=team-a");
  EXPECT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(InstanceOf(r).ns, "team-a");
}

// A listed instance can be sent back unchanged: read-only fields are ignored.
TEST_F(ApiTest, ListedInstanceCanBeSentBackUnchanged) {
  ASSERT_EQ(Register("orders", "orders-1",
                     RegisterBody("10.0.0.1:80", {{"version", "1.0"},
                                                  {"weight", 3},
                                                  {"ttl_seconds", 0},
                                                  {"metadata", {{"zone", "eu-1"}}}}))
                .status,
            201);
  ListResult list = List("orders");
  ASSERT_EQ(list.instances.size(), 1u);
  const Instance listed = list.instances[0];

  wire::HttpResponse again = Register("orders", "orders-1", SerializeInstance(listed));
  EXPECT_EQ(again.status, 200) << again.body;
  Instance after = InstanceOf(again);
  EXPECT_TRUE(after.SameSpec(listed));
  EXPECT_EQ(after.modify_revision, listed.modify_revision);
  EXPECT_EQ(CurrentRevision(), list.revision);
}

// A name of exactly 128 characters is accepted.
TEST_F(ApiTest, AcceptsNamesOf128Characters) {
  std::string name(128, 'n');
  wire::HttpResponse r = Register(name, name, RegisterBody("10.0.0.1:80"));
  EXPECT_EQ(r.status, 201) << r.body;
  EXPECT_THAT(List(name).ids(), ElementsAre(name));
}

// An IPv6 address and a host name are both stored as given.
TEST_F(ApiTest, AcceptsIpv6AndHostNameAddresses) {
  ASSERT_EQ(Register("orders", "v6", RegisterBody("[::1]:8080")).status, 201);
  ASSERT_EQ(Register("orders", "dns", RegisterBody("orders.internal:9000")).status, 201);
  ListResult list = List("orders");
  ASSERT_THAT(list.ids(), ElementsAre("dns", "v6"));
  EXPECT_EQ(list.instances[0].address, "orders.internal:9000");
  EXPECT_EQ(list.instances[1].address, "[::1]:8080");
}

// /healthz answers ok with the current revision.
TEST_F(ApiTest, HealthzAnswersOkWithRevision) {
  wire::HttpResponse reg = Register("orders", "a", RegisterBody("10.0.0.1:80"));
  ASSERT_EQ(reg.status, 201);
  wire::HttpResponse r = Must(client().Get("/healthz"));
  ASSERT_EQ(r.status, 200) << r.body;
  json::value v = JsonOf(r);
  ASSERT_TRUE(v.is_object()) << r.body;
  EXPECT_EQ(v.as_object().at("status").as_string(), "ok");
  EXPECT_EQ(U64(v.as_object().at("revision")), InstanceOf(reg).modify_revision);
}

// Many requests over one kept-alive connection all succeed.
TEST_F(ApiTest, ServesManyRequestsOnOneConnection) {
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(Register("orders", "a", RegisterBody("10.0.0.1:80", {{"weight", i + 1}})).status,
              i == 0 ? 201 : 200);
    ASSERT_EQ(List("orders").instances.size(), 1u);
  }
}

}  // namespace
}  // namespace muster::testing
