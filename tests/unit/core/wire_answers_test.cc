#include "core/wire/answers.h"

#include <string>

#include <boost/json.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/json_codec.h"
#include "core/wire/errors.h"
#include "support/status_matchers.h"

namespace muster::wire {
namespace {

namespace json = boost::json;
using ::muster::testing::StatusIs;
using ::testing::HasSubstr;

Instance Sample(std::string id) {
  Instance in;
  in.ns = "prod";
  in.service = "orders";
  in.id = std::move(id);
  in.address = "10.0.0.1:80";
  in.version = "v2";
  in.metadata = {{"zone", "eu"}};
  in.create_revision = 3;
  in.modify_revision = 5;
  return in;
}

// A list answer as musterd writes it: {"revision", "instances"}.
TEST(WireAnswersTest, DecodesListAnswer) {
  json::array instances{InstanceToJson(Sample("a")), InstanceToJson(Sample("b"))};
  const std::string body =
      json::serialize(json::object{{"revision", 9}, {"instances", std::move(instances)}});
  auto list = DecodeListAnswer(body);
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->revision, 9u);
  ASSERT_EQ(list->instances.size(), 2u);
  EXPECT_EQ(list->instances[1].id, "b");
  EXPECT_EQ(list->instances[0].metadata.at("zone"), "eu");
  EXPECT_EQ(list->instances[0].modify_revision, 5u);
  auto empty = DecodeListAnswer(R"({"revision":0,"instances":[],"later":"ignored"})");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->instances.empty());
}

TEST(WireAnswersTest, MalformedListAnswersAreInternal) {
  const auto kInternal = absl::StatusCode::kInternal;
  EXPECT_THAT(DecodeListAnswer("not json"), StatusIs(kInternal, HasSubstr("malformed list answer")));
  EXPECT_THAT(DecodeListAnswer("[]"), StatusIs(kInternal, HasSubstr("not a JSON object")));
  EXPECT_THAT(DecodeListAnswer(R"({"instances":[]})"), StatusIs(kInternal, HasSubstr("revision")));
  EXPECT_THAT(DecodeListAnswer(R"({"revision":-1,"instances":[]})"),
              StatusIs(kInternal, HasSubstr("revision")));
  EXPECT_THAT(DecodeListAnswer(R"({"revision":"1","instances":[]})"),
              StatusIs(kInternal, HasSubstr("revision")));
  EXPECT_THAT(DecodeListAnswer(R"({"revision":1})"), StatusIs(kInternal, HasSubstr("instances")));
  EXPECT_THAT(DecodeListAnswer(R"({"revision":1,"instances":{}})"),
              StatusIs(kInternal, HasSubstr("instances")));
  EXPECT_THAT(DecodeListAnswer(R"({"revision":1,"instances":[7]})"),
              StatusIs(kInternal, HasSubstr("malformed list answer")));
}

TEST(WireAnswersTest, DecodesServicesAnswer) {
  auto answer = DecodeServicesAnswer(
      R"({"revision":4,"services":[{"name":"a","instances":2,"healthy":1},)"
      R"({"name":"b","instances":0,"healthy":0,"new":true}]})");
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->revision, 4u);
  ASSERT_EQ(answer->services.size(), 2u);
  EXPECT_EQ(answer->services[0].name, "a");
  EXPECT_EQ(answer->services[0].instances, 2u);
  EXPECT_EQ(answer->services[0].healthy, 1u);
  EXPECT_EQ(answer->services[1].name, "b");

  const auto kInternal = absl::StatusCode::kInternal;
  EXPECT_THAT(DecodeServicesAnswer(R"({"revision":4})"), StatusIs(kInternal, HasSubstr("services")));
  EXPECT_THAT(DecodeServicesAnswer(R"({"revision":4,"services":[{"instances":1,"healthy":1}]})"),
              StatusIs(kInternal, HasSubstr("name")));
  EXPECT_THAT(DecodeServicesAnswer(R"({"revision":4,"services":[{"name":"a","instances":1}]})"),
              StatusIs(kInternal, HasSubstr("service a")));
  EXPECT_THAT(DecodeServicesAnswer(R"({"revision":4,"services":["a"]})"),
              StatusIs(kInternal, HasSubstr("name")));
}

// An event as musterd encodes it decodes back to the same change; the
// event's name is its change kind.
TEST(WireAnswersTest, EventRoundTrips) {
  for (ChangeType type : {ChangeType::kRegistered, ChangeType::kUpdated, ChangeType::kDeregistered,
                          ChangeType::kExpired, ChangeType::kHealth}) {
    const std::string data = json::serialize(EventToJson(12, type, Sample("a"), nullptr));
    auto event = DecodeWatchEvent(ToString(type), data);
    ASSERT_TRUE(event.ok()) << event.status();
    ASSERT_TRUE(event->has_value());
    EXPECT_EQ((*event)->type, type);
    EXPECT_EQ((*event)->revision, 12u);
    EXPECT_EQ((*event)->instance.id, "a");
    EXPECT_EQ((*event)->instance.service, "orders");
    EXPECT_EQ((*event)->check, "");
  }
}

// A health event names the check that changed.
TEST(WireAnswersTest, HealthEventNamesItsCheck) {
  Instance in = Sample("a");
  Check c;
  c.id = "http-1";
  c.type = CheckType::kHttp;
  c.target = "/health";
  c.status = Health::kWarning;
  in.checks.push_back(c);
  const json::object o = EventToJson(13, ChangeType::kHealth, in, &in.checks[0]);
  EXPECT_EQ(o.at("type").as_string(), "health");
  EXPECT_EQ(o.at("namespace").as_string(), "prod");
  EXPECT_EQ(o.at("service").as_string(), "orders");
  EXPECT_EQ(o.at("id").as_string(), "a");
  EXPECT_EQ(o.at("check").at("status").as_string(), "warning");
  auto event = DecodeWatchEvent("health", json::serialize(o));
  ASSERT_TRUE(event.ok() && event->has_value());
  EXPECT_EQ((*event)->check, "http-1");
  ASSERT_EQ((*event)->instance.checks.size(), 1u);
  EXPECT_EQ((*event)->instance.checks[0].status, Health::kWarning);
}

// "compacted" is the end of a stream that fell behind; its message is the
// server's.
TEST(WireAnswersTest, CompactedIsOutOfRange) {
  EXPECT_THAT(DecodeWatchEvent(kCompactedEvent, ErrorBody(kGone.name, "list again")),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("list again")));
  EXPECT_THAT(DecodeWatchEvent(kCompactedEvent, "garbage"),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("fell behind")));
}

// Events of kinds a reader does not know are skipped, not errors.
TEST(WireAnswersTest, UnknownEventKindsAreSkipped) {
  for (std::string_view name : {"message", "progress", "", "Registered"}) {
    auto event = DecodeWatchEvent(name, "{}");
    ASSERT_TRUE(event.ok()) << name;
    EXPECT_FALSE(event->has_value()) << name;
  }
}

TEST(WireAnswersTest, MalformedChangeEventsAreInternal) {
  const auto kInternal = absl::StatusCode::kInternal;
  EXPECT_THAT(DecodeWatchEvent("updated", "{"), StatusIs(kInternal, HasSubstr("watch event")));
  EXPECT_THAT(DecodeWatchEvent("updated", R"({"instance":{}})"),
              StatusIs(kInternal, HasSubstr("revision")));
  EXPECT_THAT(DecodeWatchEvent("updated", R"({"revision":3})"),
              StatusIs(kInternal, HasSubstr("instance")));
  EXPECT_THAT(DecodeWatchEvent("updated", R"({"revision":3,"instance":"a"})"),
              StatusIs(kInternal, HasSubstr("watch event")));
}

// The one spelling of each change kind, both ways.
TEST(WireAnswersTest, ChangeTypeNames) {
  EXPECT_EQ(ToString(ChangeType::kRegistered), "registered");
  EXPECT_EQ(ToString(ChangeType::kUpdated), "updated");
  EXPECT_EQ(ToString(ChangeType::kDeregistered), "deregistered");
  EXPECT_EQ(ToString(ChangeType::kExpired), "expired");
  EXPECT_EQ(ToString(ChangeType::kHealth), "health");
  for (ChangeType type : {ChangeType::kRegistered, ChangeType::kUpdated, ChangeType::kDeregistered,
                          ChangeType::kExpired, ChangeType::kHealth}) {
    EXPECT_EQ(ParseChangeType(ToString(type)), type);
  }
  EXPECT_EQ(ParseChangeType("compacted"), std::nullopt);
  EXPECT_EQ(ParseChangeType(""), std::nullopt);
}

}  // namespace
}  // namespace muster::wire
