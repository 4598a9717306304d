#include "core/wire/errors.h"

#include <set>
#include <string>

#include <boost/json.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/status_matchers.h"

namespace muster::wire {
namespace {

namespace json = boost::json;
using ::muster::testing::IsOk;
using ::muster::testing::StatusIs;
using ::testing::HasSubstr;
using C = absl::StatusCode;

// Every canonical code: its name, its HTTP status, and the way back.
TEST(WireErrorsTest, EveryCodeHasOneNameAndStatus) {
  const std::vector<std::tuple<C, std::string_view, int>> want = {
      {C::kOk, "ok", 200},
      {C::kCancelled, "cancelled", 500},
      {C::kUnknown, "unknown", 500},
      {C::kInvalidArgument, "invalid_argument", 400},
      {C::kDeadlineExceeded, "deadline_exceeded", 504},
      {C::kNotFound, "not_found", 404},
      {C::kAlreadyExists, "already_exists", 409},
      {C::kPermissionDenied, "permission_denied", 403},
      {C::kResourceExhausted, "resource_exhausted", 429},
      {C::kFailedPrecondition, "failed_precondition", 400},
      {C::kAborted, "aborted", 409},
      {C::kOutOfRange, "out_of_range", 400},
      {C::kUnimplemented, "unimplemented", 501},
      {C::kInternal, "internal", 500},
      {C::kUnavailable, "unavailable", 503},
      {C::kDataLoss, "data_loss", 500},
      {C::kUnauthenticated, "unauthenticated", 401},
  };
  EXPECT_EQ(CanonicalCodes().size(), want.size());
  std::set<std::string_view> names;
  for (const auto& [code, name, status] : want) {
    EXPECT_EQ(ErrorCodeName(code), name);
    EXPECT_EQ(HttpStatusFor(code), status) << name;
    EXPECT_EQ(StatusCodeForName(name), code) << name;
    names.insert(name);
    // Sent by musterd and read back by a client: the same code, whatever
    // the HTTP status shares it with.
    if (code != C::kOk) {
      EXPECT_THAT(DecodeError(status, ErrorBody(name, "why")), StatusIs(code, "why")) << name;
    }
  }
  EXPECT_EQ(names.size(), want.size());  // no name twice
}

// The HTTP-level refusals are named apart and read back as their code.
TEST(WireErrorsTest, HttpLevelNames) {
  for (const ErrorCode& e : {kMethodNotAllowed, kBadRequest, kPayloadTooLarge, kGone}) {
    EXPECT_EQ(StatusCodeForName(e.name), e.code) << e.name;
    EXPECT_EQ(StatusCodeForHttpStatus(e.http_status), e.code) << e.name;
    EXPECT_THAT(DecodeError(e.http_status, ErrorBody(e.name, "m")), StatusIs(e.code, "m"));
  }
  EXPECT_EQ(kGone.code, C::kOutOfRange);
  EXPECT_EQ(kMethodNotAllowed.http_status, 405);
  EXPECT_EQ(StatusCodeForName("no_such_code"), std::nullopt);
}

// Without a code in the body the HTTP status decides: one code per status.
TEST(WireErrorsTest, StatusAloneMapsToOneCode) {
  EXPECT_EQ(StatusCodeForHttpStatus(200), C::kOk);
  EXPECT_EQ(StatusCodeForHttpStatus(201), C::kOk);
  EXPECT_EQ(StatusCodeForHttpStatus(400), C::kInvalidArgument);
  EXPECT_EQ(StatusCodeForHttpStatus(401), C::kUnauthenticated);
  EXPECT_EQ(StatusCodeForHttpStatus(403), C::kPermissionDenied);
  EXPECT_EQ(StatusCodeForHttpStatus(404), C::kNotFound);
  EXPECT_EQ(StatusCodeForHttpStatus(405), C::kInvalidArgument);
  EXPECT_EQ(StatusCodeForHttpStatus(409), C::kAborted);
  EXPECT_EQ(StatusCodeForHttpStatus(410), C::kOutOfRange);
  EXPECT_EQ(StatusCodeForHttpStatus(413), C::kInvalidArgument);
  EXPECT_EQ(StatusCodeForHttpStatus(429), C::kResourceExhausted);
  EXPECT_EQ(StatusCodeForHttpStatus(431), C::kInvalidArgument);
  EXPECT_EQ(StatusCodeForHttpStatus(418), C::kFailedPrecondition);
  EXPECT_EQ(StatusCodeForHttpStatus(500), C::kInternal);
  EXPECT_EQ(StatusCodeForHttpStatus(501), C::kUnimplemented);
  EXPECT_EQ(StatusCodeForHttpStatus(502), C::kInternal);
  EXPECT_EQ(StatusCodeForHttpStatus(503), C::kUnavailable);
  EXPECT_EQ(StatusCodeForHttpStatus(504), C::kDeadlineExceeded);
  EXPECT_EQ(StatusCodeForHttpStatus(302), C::kUnknown);
}

// The body's code wins over a guess from the status: a 400 that says
// failed_precondition is FailedPrecondition, not InvalidArgument.
TEST(WireErrorsTest, BodyCodeWinsOverStatus) {
  EXPECT_THAT(DecodeError(400, R"({"error":{"code":"failed_precondition","message":"m"}})"),
              StatusIs(C::kFailedPrecondition, "m"));
  EXPECT_THAT(DecodeError(409, R"({"error":{"code":"already_exists","message":"m"}})"),
              StatusIs(C::kAlreadyExists, "m"));
  EXPECT_THAT(DecodeError(500, R"({"error":{"code":"data_loss","message":"m"}})"),
              StatusIs(C::kDataLoss, "m"));
}

TEST(WireErrorsTest, SuccessIsOk) {
  EXPECT_THAT(DecodeError(200, "{}"), IsOk());
  EXPECT_THAT(DecodeError(204, ""), IsOk());
}

// Bodies that are not a well-formed error: the status decides the code, and
// the message says what came.
TEST(WireErrorsTest, MalformedBodies) {
  // An unknown code (a newer server): the status's code, the message kept.
  EXPECT_THAT(DecodeError(404, R"({"error":{"code":"teapot","message":"m"}})"),
              StatusIs(C::kNotFound, "m"));
  // "ok" in a failure is nonsense.
  EXPECT_THAT(DecodeError(503, R"({"error":{"code":"ok","message":"m"}})"),
              StatusIs(C::kUnavailable, "m"));
  // Wrong types.
  EXPECT_THAT(DecodeError(400, R"({"error":{"code":7,"message":["m"]}})"),
              StatusIs(C::kInvalidArgument, "HTTP 400"));
  EXPECT_THAT(DecodeError(400, R"({"error":"bad"})"),
              StatusIs(C::kInvalidArgument, HasSubstr("HTTP 400: {\"error\":\"bad\"}")));
  // A code but no message.
  EXPECT_THAT(DecodeError(503, R"({"error":{"code":"not_found"}})"),
              StatusIs(C::kNotFound, "HTTP 503"));
  // Not JSON: the start of the body, on one line.
  EXPECT_THAT(DecodeError(502, "<html>\n  Bad   Gateway\n</html>\n"),
              StatusIs(C::kInternal, "HTTP 502: <html> Bad Gateway </html>"));
  EXPECT_THAT(DecodeError(503, ""), StatusIs(C::kUnavailable, "HTTP 503"));
  EXPECT_THAT(DecodeError(500, R"({"error":{"code":"internal","mess)"),
              StatusIs(C::kInternal, HasSubstr("HTTP 500: {\"error\"")));
  // A long body is cut, and bytes that are not UTF-8 are replaced.
  auto long_body = DecodeError(500, std::string(1000, 'x') + "\xFF");
  EXPECT_LT(long_body.message().size(), 250u);
  EXPECT_THAT(long_body, StatusIs(C::kInternal, HasSubstr("...")));
}

// Errors have exactly the documented shape {"error":{"code","message"}}.
TEST(WireErrorsTest, ErrorBodyHasDocumentedShape) {
  json::value v = json::parse(ErrorBody("invalid_argument", "weight must be 1..10000"));
  ASSERT_TRUE(v.is_object());
  const json::object& o = v.as_object();
  ASSERT_EQ(o.size(), 1u);
  ASSERT_TRUE(o.contains("error"));
  const json::object& err = o.at("error").as_object();
  EXPECT_EQ(err.size(), 2u);
  EXPECT_EQ(err.at("code").as_string(), "invalid_argument");
  EXPECT_EQ(err.at("message").as_string(), "weight must be 1..10000");
}

// Messages that quote user input stay valid JSON and decode back unchanged.
TEST(WireErrorsTest, ErrorBodyEscapesMessage) {
  std::string message = "unknown field \"a\\b\"\n\x01";
  json::value v = json::parse(ErrorBody("invalid_argument", message));
  EXPECT_EQ(v.at("error").at("message").as_string(), message);
  EXPECT_THAT(DecodeError(400, ErrorBody("invalid_argument", message)),
              StatusIs(C::kInvalidArgument, message));
}

}  // namespace
}  // namespace muster::wire
