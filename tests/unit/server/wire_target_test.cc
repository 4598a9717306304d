// The targets core/wire/paths.h builds, read back by musterd's own parser
// (server/url.h): what a client escapes, musterd gets back byte for byte.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/wire/paths.h"
#include "server/url.h"

namespace muster {
namespace {

// An id or service with '/', '?', '%', a space or UTF-8 stays one segment.
TEST(WireTargetTest, SegmentsRoundTripThroughMusterdsParser) {
  for (const std::string id :
       {"a/b", "a?b", "100%", "a b", "\xC3\xA9t\xC3\xA9", "../x", "a#b", "a+b", "%2F"}) {
    const std::string service = "svc/" + id;
    auto t = ParseTarget(wire::HeartbeatTarget(InstanceKey{"ns?" + id, service, id}));
    ASSERT_TRUE(t.has_value()) << id;
    ASSERT_EQ(t->segments.size(), 7u) << id;
    EXPECT_EQ(t->segments[3], service);
    EXPECT_EQ(t->segments[5], id);
    EXPECT_EQ(t->segments[6], "heartbeat");
    EXPECT_EQ(t->Param("namespace"), "ns?" + id);
  }
}

TEST(WireTargetTest, ListParametersRoundTrip) {
  wire::ListParams p;
  p.ns = "a&b";
  p.version = "v=2";
  p.metadata = {{"zone", "eu/west"}, {"k&", "v=1 %"}};
  p.index = 42;
  p.wait = std::chrono::milliseconds(1500);
  auto t = ParseTarget(wire::ListTarget("a?b", p));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->segments[3], "a?b");
  EXPECT_EQ(t->Param("namespace"), "a&b");
  EXPECT_EQ(t->Param("version"), "v=2");
  EXPECT_EQ(t->Param("meta.zone"), "eu/west");
  EXPECT_EQ(t->Param("meta.k&"), "v=1 %");
  EXPECT_EQ(t->Param("index"), "42");
  EXPECT_EQ(t->Param("wait"), "1.5s");
}

TEST(WireTargetTest, WatchServicesRoundTrip) {
  auto t = ParseTarget(wire::WatchTarget("prod", {"a", "b/c", "d&e"}, 7));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->segments, (std::vector<std::string>{"api", "v1", "watch"}));
  EXPECT_EQ(t->All("service"), (std::vector<std::string>{"a", "b/c", "d&e"}));
  EXPECT_EQ(t->Param("from"), "7");
}

}  // namespace
}  // namespace muster
