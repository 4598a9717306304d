#include "core/json_codec.h"

#include <set>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "support/status_matchers.h"

namespace muster {
namespace {

namespace json = boost::json;
using ::muster::testing::IsOk;
using ::muster::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

// Parses a register body for default/orders/orders-1 with default limits.
absl::StatusOr<Instance> Parse(std::string_view body) {
  return ParseRegistration(body, "default", "orders", "orders-1", Limits{});
}

// A register body with `extra` (a JSON fragment of further fields) after the address.
std::string Body(const std::string& extra) {
  if (extra.empty()) return R"({"address":"10.1.2.3:8080"})";
  return absl::StrCat(R"({"address":"10.1.2.3:8080",)", extra, "}");
}

Instance FullInstance() {
  Instance in;
  in.ns = "team-a";
  in.service = "orders";
  in.id = "orders-1";
  in.version = "1.4.2";
  in.address = "[::1]:8080";
  in.status = InstanceStatus::kDisabled;
  in.weight = 7;
  in.metadata = {{"zone", "eu-1"}, {"rack", "r\"7\""}};
  in.ttl_seconds = 0;
  in.health = Health::kWarning;
  in.create_revision = 12;
  in.modify_revision = 40;
  return in;
}

// The smallest body is an address; identity comes from the path, the rest defaults.
TEST(JsonCodecTest, RegistrationWithOnlyAddressTakesDefaults) {
  auto in = Parse(Body(""));
  ASSERT_THAT(in, IsOk());
  EXPECT_EQ(in->ns, "default");
  EXPECT_EQ(in->service, "orders");
  EXPECT_EQ(in->id, "orders-1");
  EXPECT_EQ(in->version, "");
  EXPECT_EQ(in->address, "10.1.2.3:8080");
  EXPECT_EQ(in->status, InstanceStatus::kEnabled);
  EXPECT_EQ(in->weight, 100u);
  EXPECT_TRUE(in->metadata.empty());
  EXPECT_EQ(in->ttl_seconds, 30u);
  EXPECT_EQ(in->health, Health::kPassing);
  EXPECT_EQ(in->create_revision, 0u);
  EXPECT_EQ(in->modify_revision, 0u);
}

// Every writable field of a register body is read.
TEST(JsonCodecTest, RegistrationReadsEveryWritableField) {
  auto in = ParseRegistration(
      R"({"id":"orders-1","service":"orders","namespace":"team-a","version":"2.0",
          "address":"orders.local:9000","status":"disabled","weight":10000,
          "metadata":{"zone":"eu-1","empty":""},"ttl_seconds":0})",
      "team-a", "orders", "orders-1", Limits{});
  ASSERT_THAT(in, IsOk());
  EXPECT_EQ(in->ns, "team-a");
  EXPECT_EQ(in->version, "2.0");
  EXPECT_EQ(in->address, "orders.local:9000");
  EXPECT_EQ(in->status, InstanceStatus::kDisabled);
  EXPECT_EQ(in->weight, 10000u);
  EXPECT_EQ(in->metadata, (std::map<std::string, std::string>{{"zone", "eu-1"}, {"empty", ""}}));
  EXPECT_EQ(in->ttl_seconds, 0u);
}

// Tags are read in their order, written back the same way, and left out of
// the JSON when there are none (so what was stored before tags existed reads
// the same, and reads back as no tags).
TEST(JsonCodecTest, TagsKeepTheirOrderAndAreOmittedWhenNone) {
  auto in = Parse(Body(R"("tags":["primary","eu-west","a b=c"])"));
  ASSERT_THAT(in, IsOk());
  EXPECT_EQ(in->tags, (std::vector<std::string>{"primary", "eu-west", "a b=c"}));
  const std::string written = SerializeInstance(*in);
  EXPECT_THAT(written, HasSubstr(R"("tags":["primary","eu-west","a b=c"])"));
  auto back = InstanceFromJson(json::parse(written));
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(back->tags, in->tags);

  auto plain = Parse(Body(""));
  ASSERT_THAT(plain, IsOk());
  EXPECT_THAT(SerializeInstance(*plain), ::testing::Not(HasSubstr("tags")));
  auto old = InstanceFromJson(json::parse(R"({"id":"orders-1","service":"orders","address":"10.1.2.3:8080"})"));
  ASSERT_THAT(old, IsOk());
  EXPECT_TRUE(old->tags.empty());
}

// Tags must be an array of strings; the limits are the validator's.
TEST(JsonCodecTest, RegistrationRejectsMalformedTags) {
  EXPECT_THAT(Parse(Body(R"("tags":"primary")")),
              StatusIs(kInvalid, HasSubstr("\"tags\" must be an array of strings")));
  EXPECT_THAT(Parse(Body(R"("tags":["a",1])")),
              StatusIs(kInvalid, HasSubstr("\"tags\" must be an array of strings")));
  EXPECT_THAT(Parse(Body(R"("tags":["a","a"])")), StatusIs(kInvalid, HasSubstr("given twice")));
}

// A typo must never pass silently: unknown fields are named in the error.
TEST(JsonCodecTest, RegistrationRejectsUnknownField) {
  EXPECT_THAT(Parse(Body(R"("wieght":5)")),
              StatusIs(kInvalid, HasSubstr("unknown field \"wieght\"")));
}

// Malformed JSON is InvalidArgument, not a crash or an exception.
TEST(JsonCodecTest, RegistrationRejectsMalformedJson) {
  for (const char* body : {"", "{", R"({"address":)", R"({"address":"a:1",})", "nul", "{}}"}) {
    EXPECT_THAT(Parse(body), StatusIs(kInvalid, HasSubstr("bad JSON"))) << body;
  }
}

// The body must be an object, not any JSON value.
TEST(JsonCodecTest, RegistrationRejectsNonObjectBody) {
  for (const char* body : {"[1,2]", "\"a:1\"", "42", "null"}) {
    EXPECT_THAT(Parse(body), StatusIs(kInvalid, HasSubstr("body must be a JSON object"))) << body;
  }
}

// "weight": "5" is a wrong type, not a number in disguise.
TEST(JsonCodecTest, RegistrationRejectsWeightAsString) {
  EXPECT_THAT(Parse(Body(R"("weight":"5")")),
              StatusIs(kInvalid, HasSubstr("field \"weight\" must be an integer")));
}

// A fractional weight is a wrong type; so is an integral double, for consistency.
TEST(JsonCodecTest, RegistrationRejectsFractionalWeight) {
  EXPECT_THAT(Parse(Body(R"("weight":1.5)")),
              StatusIs(kInvalid, HasSubstr("field \"weight\" must be an integer")));
  EXPECT_THAT(Parse(Body(R"("weight":1.0)")),
              StatusIs(kInvalid, HasSubstr("field \"weight\" must be an integer")));
}

// Negative numbers are refused with their own message.
TEST(JsonCodecTest, RegistrationRejectsNegativeNumbers) {
  EXPECT_THAT(Parse(Body(R"("weight":-1)")),
              StatusIs(kInvalid, HasSubstr("field \"weight\" must not be negative")));
  EXPECT_THAT(Parse(Body(R"("ttl_seconds":-5)")),
              StatusIs(kInvalid, HasSubstr("field \"ttl_seconds\" must not be negative")));
}

// A number too large for the field is out of range rather than truncated.
TEST(JsonCodecTest, RegistrationRejectsWeightBeyondUint32) {
  EXPECT_THAT(Parse(Body(R"("weight":4294967297)")),
              StatusIs(kInvalid, HasSubstr("field \"weight\" is out of range")));
}

// Weight 0 and 10001 fail validation; 1 and 10000 pass.
TEST(JsonCodecTest, RegistrationChecksWeightBounds) {
  EXPECT_THAT(Parse(Body(R"("weight":0)")),
              StatusIs(kInvalid, HasSubstr("weight must be 1..10000")));
  EXPECT_THAT(Parse(Body(R"("weight":10001)")),
              StatusIs(kInvalid, HasSubstr("weight must be 1..10000")));
  EXPECT_THAT(Parse(Body(R"("weight":1)")), IsOk());
  EXPECT_THAT(Parse(Body(R"("weight":10000)")), IsOk());
}

// A TTL over a day is refused.
TEST(JsonCodecTest, RegistrationChecksTtlBound) {
  EXPECT_THAT(Parse(Body(R"("ttl_seconds":86401)")),
              StatusIs(kInvalid, HasSubstr("ttl_seconds must be 0..86400")));
}

// Strings are required where the model has strings.
TEST(JsonCodecTest, RegistrationRejectsWrongTypesForStringFields) {
  EXPECT_THAT(Parse(R"({"address":8080})"),
              StatusIs(kInvalid, HasSubstr("field \"address\" must be a string")));
  EXPECT_THAT(Parse(Body(R"("version":2)")),
              StatusIs(kInvalid, HasSubstr("field \"version\" must be a string")));
  EXPECT_THAT(Parse(Body(R"("id":null)")),
              StatusIs(kInvalid, HasSubstr("field \"id\" must be a string")));
}

// status is "enabled" or "disabled" and nothing else.
TEST(JsonCodecTest, RegistrationRejectsUnknownStatus) {
  EXPECT_THAT(Parse(Body(R"("status":"paused")")),
              StatusIs(kInvalid, HasSubstr("field \"status\" must be \"enabled\" or \"disabled\"")));
}

// Metadata values are strings only: numbers, booleans and objects are refused.
TEST(JsonCodecTest, RegistrationRejectsNonStringMetadataValue) {
  EXPECT_THAT(Parse(Body(R"("metadata":{"port":8080})")),
              StatusIs(kInvalid, HasSubstr("metadata value of \"port\" must be a string")));
  EXPECT_THAT(Parse(Body(R"("metadata":{"tls":true})")),
              StatusIs(kInvalid, HasSubstr("metadata value of \"tls\" must be a string")));
  EXPECT_THAT(Parse(Body(R"("metadata":{"x":{"y":"z"}})")),
              StatusIs(kInvalid, HasSubstr("must be a string")));
}

// Metadata itself must be an object.
TEST(JsonCodecTest, RegistrationRejectsMetadataThatIsNotAnObject) {
  EXPECT_THAT(Parse(Body(R"("metadata":["a"])")),
              StatusIs(kInvalid, HasSubstr("field \"metadata\" must be an object of strings")));
}

// 65 metadata entries exceed the limit of 64.
TEST(JsonCodecTest, RegistrationRejects65MetadataEntries) {
  std::string meta;
  for (int i = 0; i < 65; ++i) absl::StrAppend(&meta, i ? "," : "", "\"k", i, "\":\"v\"");
  EXPECT_THAT(Parse(Body(absl::StrCat("\"metadata\":{", meta, "}"))),
              StatusIs(kInvalid, HasSubstr("metadata has more than 64 entries")));
}

// A 513-byte metadata value exceeds the limit of 512.
TEST(JsonCodecTest, RegistrationRejectsMetadataValueOf513Bytes) {
  EXPECT_THAT(Parse(Body(absl::StrCat(R"("metadata":{"blob":")", std::string(513, 'x'), "\"}"))),
              StatusIs(kInvalid, HasSubstr("metadata value of \"blob\" is over 512 bytes")));
}

// id, service and namespace may repeat the path but never contradict it.
TEST(JsonCodecTest, RegistrationRejectsIdentityThatContradictsPath) {
  EXPECT_THAT(Parse(Body(R"("id":"orders-2")")),
              StatusIs(kInvalid, HasSubstr("field \"id\" does not match the id in the path")));
  EXPECT_THAT(Parse(Body(R"("service":"billing")")),
              StatusIs(kInvalid,
                       HasSubstr("field \"service\" does not match the service in the path")));
  EXPECT_THAT(Parse(Body(R"("namespace":"team-a")")),
              StatusIs(kInvalid, HasSubstr("field \"namespace\" does not match ?namespace=")));
}

// Repeating the path's identity in the body is fine.
TEST(JsonCodecTest, RegistrationAcceptsIdentityEqualToPath) {
  EXPECT_THAT(Parse(Body(R"("id":"orders-1","service":"orders","namespace":"default")")), IsOk());
}

// address is the one required field.
TEST(JsonCodecTest, RegistrationRequiresAddress) {
  EXPECT_THAT(Parse(R"({"weight":5})"),
              StatusIs(kInvalid, HasSubstr("field \"address\" is required")));
  EXPECT_THAT(Parse("{}"), StatusIs(kInvalid, HasSubstr("field \"address\" is required")));
}

// The address is validated as host:port.
TEST(JsonCodecTest, RegistrationValidatesAddress) {
  EXPECT_THAT(Parse(R"({"address":"10.1.2.3:0"})"),
              StatusIs(kInvalid, AllOf(HasSubstr("address"), HasSubstr("port must be 1..65535"))));
}

// The path's names are validated as well as the body's.
TEST(JsonCodecTest, RegistrationValidatesNamesFromThePath) {
  EXPECT_THAT(ParseRegistration(Body(""), "default", "orders", "bad!id", Limits{}),
              StatusIs(kInvalid, HasSubstr("id may contain only")));
  EXPECT_THAT(ParseRegistration(Body(""), "default", std::string(129, 's'), "orders-1", Limits{}),
              StatusIs(kInvalid, HasSubstr("service is longer than 128 characters")));
}

// health and the revisions are read-only: accepted, so a listed instance can be
// sent back, and ignored.
TEST(JsonCodecTest, RegistrationAcceptsAndIgnoresReadOnlyFields) {
  auto in = Parse(Body(R"("health":"critical","create_revision":5,"modify_revision":9)"));
  ASSERT_THAT(in, IsOk());
  EXPECT_EQ(in->health, Health::kPassing);
  EXPECT_EQ(in->create_revision, 0u);
  EXPECT_EQ(in->modify_revision, 0u);
}

// An instance as the registry lists it registers back to the same spec.
TEST(JsonCodecTest, ListedInstanceCanBeSentBackUnchanged) {
  Instance listed = FullInstance();
  auto in = ParseRegistration(SerializeInstance(listed), "team-a", "orders", "orders-1", Limits{});
  ASSERT_THAT(in, IsOk());
  EXPECT_TRUE(in->SameSpec(listed));
}

// The body size limit is enforced by the parser too.
TEST(JsonCodecTest, RegistrationRejectsBodyOverLimit) {
  Limits limits;
  limits.max_body_bytes = 64;
  std::string body = Body(absl::StrCat(R"("version":")", std::string(80, 'v'), "\""));
  EXPECT_THAT(ParseRegistration(body, "default", "orders", "orders-1", limits),
              StatusIs(kInvalid, HasSubstr("body is over 64 bytes")));
}

// The wire names of every field are the documented ones.
TEST(JsonCodecTest, InstanceToJsonUsesDocumentedFieldNames) {
  json::object o = InstanceToJson(FullInstance());
  std::set<std::string> keys;
  for (const auto& kv : o) keys.insert(std::string(kv.key()));
  EXPECT_EQ(keys, (std::set<std::string>{"id", "service", "namespace", "version", "address",
                                         "status", "weight", "metadata", "ttl_seconds", "health",
                                         "create_revision", "modify_revision"}));
  EXPECT_EQ(o.at("namespace").as_string(), "team-a");
  EXPECT_EQ(o.at("status").as_string(), "disabled");
  EXPECT_EQ(o.at("health").as_string(), "warning");
  EXPECT_EQ(o.at("weight").to_number<int64_t>(), 7);
  EXPECT_EQ(o.at("metadata").as_object().at("rack").as_string(), "r\"7\"");
  EXPECT_EQ(o.at("modify_revision").to_number<int64_t>(), 40);
}

// Encoding and decoding an instance loses nothing, revisions and health included.
TEST(JsonCodecTest, InstanceRoundTripsThroughJson) {
  Instance original = FullInstance();
  auto decoded = InstanceFromJson(InstanceToJson(original));
  ASSERT_THAT(decoded, IsOk());
  EXPECT_TRUE(decoded->SameSpec(original));
  EXPECT_EQ(decoded->ns, original.ns);
  EXPECT_EQ(decoded->health, original.health);
  EXPECT_EQ(decoded->create_revision, original.create_revision);
  EXPECT_EQ(decoded->modify_revision, original.modify_revision);
}

// The text form round-trips too.
TEST(JsonCodecTest, SerializedInstanceParsesBack) {
  Instance original = FullInstance();
  original.health = Health::kCritical;
  auto decoded = ParseInstance(SerializeInstance(original));
  ASSERT_THAT(decoded, IsOk());
  EXPECT_TRUE(decoded->SameSpec(original));
  EXPECT_EQ(decoded->health, Health::kCritical);
  EXPECT_EQ(decoded->modify_revision, 40u);
}

// The lenient decoder ignores fields it does not know (a newer server's).
TEST(JsonCodecTest, InstanceFromJsonIgnoresUnknownFields) {
  auto in = ParseInstance(R"({"id":"a","address":"h:1","future":[1,2],"weight":3})");
  ASSERT_THAT(in, IsOk());
  EXPECT_EQ(in->id, "a");
  EXPECT_EQ(in->weight, 3u);
  EXPECT_EQ(in->ttl_seconds, 30u);
}

// The lenient decoder still refuses wrong types and non-objects.
TEST(JsonCodecTest, InstanceFromJsonRejectsWrongTypes) {
  EXPECT_THAT(ParseInstance(R"({"weight":"heavy"})"),
              StatusIs(kInvalid, HasSubstr("field \"weight\" must be an integer")));
  EXPECT_THAT(ParseInstance("[]"),
              StatusIs(kInvalid, HasSubstr("instance must be a JSON object")));
  EXPECT_THAT(ParseInstance("{"), StatusIs(kInvalid, HasSubstr("bad JSON")));
}

}  // namespace
}  // namespace muster
