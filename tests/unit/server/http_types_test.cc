#include "server/http_types.h"

#include <memory>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace muster {
namespace {

// What Beast's own serializer puts on the wire for `response`.
std::string BeastWire(const Response& response) {
  std::ostringstream out;
  out << static_cast<const Response::Message&>(response);
  return out.str();
}

// The head musterd writes itself is, byte for byte, the one Beast would write.
TEST(ResponseHeadTest, MatchesBeastsSerializer) {
  Response ok = JsonResponse(http::status::ok, boost::json::object{{"a", 1}});
  ok.set("X-Muster-Index", "42");
  ok.set(http::field::server, "musterd");
  ok.keep_alive(true);
  ok.prepare_payload();

  Response refused = ErrorResponse(http::status::method_not_allowed, "method_not_allowed", "no");
  refused.set(http::field::allow, "GET");
  refused.keep_alive(false);
  refused.prepare_payload();

  Response old = JsonResponse(http::status::service_unavailable, boost::json::object{});
  old.version(10);
  old.keep_alive(true);
  old.reason("Going Away");
  old.prepare_payload();

  for (const Response* r : {&ok, &refused, &old}) {
    EXPECT_EQ(ResponseHead(*r) + r->body(), BeastWire(*r));
  }
  EXPECT_EQ(ResponseHead(old).substr(0, 28), "HTTP/1.0 503 Going Away\r\nCon");
}

// The payload is body(), then the shared bytes, then the tail.
TEST(ResponseHeadTest, PayloadSizeCountsSharedAndTail) {
  Response r{http::status::ok, 11};
  r.body() = "{\"x\":";
  EXPECT_EQ(r.payload_size(), 5u);
  r.shared = std::make_shared<const std::string>("[1,2,3]");
  r.tail = "}\n";
  EXPECT_EQ(r.payload_size(), 14u);
}

}  // namespace
}  // namespace muster
