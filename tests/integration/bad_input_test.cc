// Bad input over HTTP: each case answers the documented status and error code,
// names the problem in its message, and changes nothing ("A request that fails
// changes nothing", docs/api.md).
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "integration/musterd_fixture.h"

namespace muster::testing {
namespace {

namespace json = boost::json;

constexpr char kInstance[] = "/api/v1/services/orders/instances/orders-1";
constexpr char kAddress[] = "10.1.2.3:8080";

struct BadRequest {
  std::string name;  // the test's name suffix
  std::string method;
  std::string target;
  std::string body;
  int want_status;
  std::string want_code;      // error.code; always checked
  std::string want_fragment;  // in error.message, ignoring case; "" = not checked
};

std::ostream& operator<<(std::ostream& os, const BadRequest& c) {
  return os << c.method << " " << c.target.substr(0, 100) << " body "
            << c.body.substr(0, 100) << (c.body.size() > 100 ? "..." : "");
}

std::string Body(const std::string& fields) {
  return std::string(R"({"address":")") + kAddress + "\"" + (fields.empty() ? "" : ",") + fields +
         "}";
}

std::string ManyMetadata(int entries) {
  std::string meta;
  for (int i = 0; i < entries; ++i) {
    meta += (i ? "," : "") + std::string("\"k") + std::to_string(i) + "\":\"v\"";
  }
  return R"("metadata":{)" + meta + "}";
}

std::string ManyTags(int tags) {
  std::string list;
  for (int i = 0; i < tags; ++i) list += (i ? ",\"t" : "\"t") + std::to_string(i) + "\"";
  return R"("tags":[)" + list + "]";
}

std::vector<BadRequest> Cases() {
  const std::string put = "PUT";
  const std::string list = "/api/v1/services/orders/instances";
  return {
      {"MalformedJson", put, kInstance, R"({"address": "10.1.2.3:8080",)", 400,
       "invalid_argument", "json"},
      {"BodyNotAnObject", put, kInstance, R"(["10.1.2.3:8080"])", 400, "invalid_argument", ""},
      {"EmptyBody", put, kInstance, "", 400, "invalid_argument", ""},
      {"WeightAsString", put, kInstance, Body(R"("weight":"5")"), 400, "invalid_argument",
       "weight"},
      {"FractionalWeight", put, kInstance, Body(R"("weight":1.5)"), 400, "invalid_argument",
       "weight"},
      {"NegativeWeight", put, kInstance, Body(R"("weight":-1)"), 400, "invalid_argument",
       "weight"},
      {"AddressAsNumber", put, kInstance, R"({"address":8080})", 400, "invalid_argument",
       "address"},
      {"UnknownField", put, kInstance, Body(R"("wieght":5)"), 400, "invalid_argument",
       "unknown field \"wieght\""},
      {"BadStatus", put, kInstance, Body(R"("status":"paused")"), 400, "invalid_argument",
       "status"},
      {"MissingAddress", put, kInstance, R"({"weight":5})", 400, "invalid_argument", "address"},
      {"IdContradictsPath", put, kInstance, Body(R"("id":"orders-2")"), 400, "invalid_argument",
       "id"},
      {"ServiceContradictsPath", put, kInstance, Body(R"("service":"billing")"), 400,
       "invalid_argument", "service"},
      {"NamespaceContradictsQuery", put, kInstance, Body(R"("namespace":"team-a")"), 400,
       "invalid_argument", "namespace"},
      {"BadIdCharacters", put, "/api/v1/services/orders/instances/orders!1", Body(""), 400,
       "invalid_argument", "id"},
      {"BadServiceCharacters", put, "/api/v1/services/ord*ers/instances/orders-1", Body(""), 400,
       "invalid_argument", "service"},
      {"BadVersionCharacters", put, kInstance, Body(R"("version":"1.0+build")"), 400,
       "invalid_argument", "version"},
      {"BadNamespaceCharacters", put, std::string(kInstance) + "?namespace=team!a", Body(""), 400,
       "invalid_argument", "namespace"},
      {"IdOf129Characters", put, "/api/v1/services/orders/instances/" + std::string(129, 'i'),
       Body(""), 400, "invalid_argument", "id"},
      {"ServiceOf129Characters", put,
       "/api/v1/services/" + std::string(129, 's') + "/instances/orders-1", Body(""), 400,
       "invalid_argument", "service"},
      {"AddressWithoutPort", put, kInstance, R"({"address":"10.1.2.3"})", 400, "invalid_argument",
       "address"},
      {"AddressPortZero", put, kInstance, R"({"address":"10.1.2.3:0"})", 400, "invalid_argument",
       "address"},
      {"AddressPort65536", put, kInstance, R"({"address":"10.1.2.3:65536"})", 400,
       "invalid_argument", "address"},
      {"AddressEmptyHost", put, kInstance, R"({"address":":8080"})", 400, "invalid_argument",
       "address"},
      {"AddressUnbalancedBracket", put, kInstance, R"({"address":"[::1:8080"})", 400,
       "invalid_argument", "address"},
      {"WeightZero", put, kInstance, Body(R"("weight":0)"), 400, "invalid_argument", "weight"},
      {"Weight10001", put, kInstance, Body(R"("weight":10001)"), 400, "invalid_argument",
       "weight"},
      {"TtlOverOneDay", put, kInstance, Body(R"("ttl_seconds":86401)"), 400, "invalid_argument",
       "ttl_seconds"},
      {"Metadata65Entries", put, kInstance, Body(ManyMetadata(65)), 400, "invalid_argument",
       "metadata"},
      {"MetadataValue513Bytes", put, kInstance,
       Body(R"("metadata":{"blob":")" + std::string(513, 'x') + "\"}"), 400, "invalid_argument",
       "metadata"},
      {"MetadataValueNotString", put, kInstance, Body(R"("metadata":{"port":8080})"), 400,
       "invalid_argument", "metadata"},
      {"MetadataKeyNotAName", put, kInstance, Body(R"("metadata":{"zone name":"a"})"), 400,
       "invalid_argument", "metadata"},
      {"TagsNotAnArray", put, kInstance, Body(R"("tags":"primary")"), 400, "invalid_argument",
       "tags"},
      {"Tag129Bytes", put, kInstance, Body(R"("tags":[")" + std::string(129, 't') + "\"]"), 400,
       "invalid_argument", "tag"},
      {"TagGivenTwice", put, kInstance, Body(R"("tags":["a","b","a"])"), 400, "invalid_argument",
       "given twice"},
      {"Tags65", put, kInstance, Body(ManyTags(65)), 400, "invalid_argument", "tags"},
      {"ListTagEmpty", "GET", list + "?tag=", "", 400, "invalid_argument", "tag"},
      {"ListTag129Bytes", "GET", list + "?tag=" + std::string(129, 't'), "", 400,
       "invalid_argument", "tag"},
      {"BodyOver64KiB", put, kInstance,
       Body(R"("version":")" + std::string(70 * 1024, 'v') + "\""), 413, "payload_too_large", ""},
      {"UnknownPath", "GET", "/api/v1/nothing-here", "", 404, "not_found", ""},
      {"UnknownApiVersion", "GET", "/api/v2/services", "", 404, "not_found", ""},
      {"WaitOverMaximum", "GET", list + "?index=1&wait=11m", "", 400, "invalid_argument", "wait"},
      {"WaitNotADuration", "GET", list + "?index=1&wait=5x", "", 400, "invalid_argument", "wait"},
      {"WaitLoneDot", "GET", list + "?index=1&wait=.", "", 400, "invalid_argument", "wait"},
      {"IndexNotANumber", "GET", list + "?index=abc", "", 400, "invalid_argument", "index"},
      {"HealthyMaybe", "GET", list + "?healthy=maybe", "", 400, "invalid_argument", "healthy"},
      {"ListBadNamespace", "GET", list + "?namespace=a/b", "", 400, "invalid_argument",
       "namespace"},
      {"WatchFromNotANumber", "GET", "/api/v1/watch?from=abc", "", 400, "invalid_argument",
       "from"},
      {"WatchBadServiceName", "GET", "/api/v1/watch?service=a!b", "", 400, "invalid_argument",
       "service"},
  };
}

class BadInputTest : public MusterdTest, public ::testing::WithParamInterface<BadRequest> {
 protected:
  void SetUp() override {
    MusterdTest::SetUp();
    if (HasFatalFailure()) return;
    // The instance every case must leave exactly as it is.
    wire::HttpResponse r = Register(
        "orders", "orders-1",
        RegisterBody(kAddress, {{"version", "1.0"}, {"weight", 7}, {"metadata", {{"zone", "a"}}}}));
    ASSERT_EQ(r.status, 201) << r.body;
    baseline_list_ = Must(client().Get(ListPath("orders"))).body;
    baseline_services_ = Must(client().Get("/api/v1/services")).body;
  }

  std::string baseline_list_;
  std::string baseline_services_;
};

// The request fails with the documented status, code and message, and the
// registry (the stored instance, the services, the revision) is unchanged.
TEST_P(BadInputTest, FailsWithDocumentedErrorAndChangesNothing) {
  const BadRequest& c = GetParam();
  wire::HttpRequest request{c.method, c.target, c.body, {}};
  wire::HttpResponse r = Must(client().Do(request, std::chrono::seconds(5)));
  EXPECT_EQ(r.status, c.want_status) << r.body.substr(0, 500);
  EXPECT_THAT(r.Header("Content-Type").value_or(""), ::testing::HasSubstr("application/json"));
  EXPECT_EQ(ErrorCodeOf(r), c.want_code) << r.body.substr(0, 500);
  if (!c.want_fragment.empty()) {
    EXPECT_TRUE(ContainsIgnoringCase(ErrorMessageOf(r), c.want_fragment))
        << "message \"" << ErrorMessageOf(r) << "\" does not mention \"" << c.want_fragment
        << "\"";
  }

  // A fresh connection, in case the server closed this one after the error.
  wire::HttpClient fresh(musterd_.address());
  wire::HttpResponse list = Must(fresh.Get(ListPath("orders")));
  EXPECT_EQ(json::parse(list.body), json::parse(baseline_list_));
  wire::HttpResponse services = Must(fresh.Get("/api/v1/services"));
  EXPECT_EQ(json::parse(services.body), json::parse(baseline_services_));
}

INSTANTIATE_TEST_SUITE_P(Api, BadInputTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<BadRequest>& param_info) {
                           return param_info.param.name;
                         });

class MethodTest : public MusterdTest {};

// A known path with the wrong method is 405 and Allow lists the right methods.
TEST_F(MethodTest, WrongMethodIs405WithAllowHeader) {
  struct Case {
    std::string method;
    std::string target;
    std::vector<std::string> allowed;
  };
  const std::vector<Case> cases = {
      {"PATCH", kInstance, {"PUT", "DELETE"}},
      {"POST", "/api/v1/services", {"GET"}},
      {"DELETE", "/api/v1/services/orders/instances", {"GET"}},
      {"GET", std::string(kInstance) + "/heartbeat", {"PUT", "POST"}},
      {"PUT", "/api/v1/watch", {"GET"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.method + " " + c.target);
    wire::HttpResponse r = Must(client().Do({c.method, c.target, "", {}}));
    EXPECT_EQ(r.status, 405) << r.body;
    EXPECT_EQ(ErrorCodeOf(r), "method_not_allowed") << r.body;
    std::string allow = r.Header("Allow").value_or("");
    for (const std::string& m : c.allowed) {
      EXPECT_THAT(allow, ::testing::HasSubstr(m)) << "Allow: " << allow;
    }
  }
}

// A header over the 16 KiB limit is refused as a bad request, not a crash.
TEST_F(MethodTest, OversizedHeaderIsRejected) {
  wire::HttpRequest request{"GET", "/healthz", "", {{"X-Filler", std::string(20 * 1024, 'x')}}};
  auto r = client().Do(request);
  // The server may answer 400/431 or close the connection; either way it lives on.
  if (r.ok()) {
    EXPECT_GE(r->status, 400) << r->body;
    EXPECT_LT(r->status, 500) << r->body;
  }
  wire::HttpClient fresh(musterd_.address());
  EXPECT_EQ(Must(fresh.Get("/healthz")).status, 200);
}

}  // namespace
}  // namespace muster::testing
