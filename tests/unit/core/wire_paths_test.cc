#include "core/wire/paths.h"

#include <string>

#include <gtest/gtest.h>

namespace muster::wire {
namespace {

// Names that are valid stay as they are: escaping changes no target of a
// well-formed request.
TEST(WirePathsTest, UnreservedCharactersAreNotEscaped) {
  EXPECT_EQ(Escape("orders-1.v2_a~b"), "orders-1.v2_a~b");
  EXPECT_EQ(InstancePath("orders", "orders-1"), "/api/v1/services/orders/instances/orders-1");
}

// Every reserved or non-ASCII byte becomes %XX (upper-case hex).
TEST(WirePathsTest, ReservedAndNonAsciiBytesAreEscaped) {
  EXPECT_EQ(Escape("a/b"), "a%2Fb");
  EXPECT_EQ(Escape("100%"), "100%25");
  EXPECT_EQ(Escape("a b"), "a%20b");
  EXPECT_EQ(Escape("a?b=c&d#e"), "a%3Fb%3Dc%26d%23e");
  EXPECT_EQ(Escape("+"), "%2B");  // not taken for a space by any reader
  EXPECT_EQ(Escape("\xC3\xA9t\xC3\xA9"), "%C3%A9t%C3%A9");  // "été"
  EXPECT_EQ(Escape(std::string("\0\xFF", 2)), "%00%FF");
  EXPECT_EQ(Escape(""), "");
}

TEST(WirePathsTest, InstanceTargets) {
  const InstanceKey key{"prod", "orders", "o-1"};
  EXPECT_EQ(InstanceTarget(key), "/api/v1/services/orders/instances/o-1?namespace=prod");
  EXPECT_EQ(HeartbeatTarget(key), "/api/v1/services/orders/instances/o-1/heartbeat?namespace=prod");
  EXPECT_EQ(ChecksTarget(key), "/api/v1/services/orders/instances/o-1/checks?namespace=prod");
  // No namespace: left out, musterd uses "default".
  EXPECT_EQ(InstanceTarget(InstanceKey{"", "orders", "a/b"}),
            "/api/v1/services/orders/instances/a%2Fb");
}

// Every list parameter, escaped, in a fixed order; unset ones left out.
TEST(WirePathsTest, ListTargetHasEveryParameter) {
  EXPECT_EQ(ListTarget("orders"), "/api/v1/services/orders/instances");
  ListParams p;
  p.ns = "prod";
  p.version = "v 2";
  p.healthy = false;
  p.metadata = {{"zone", "eu/west"}, {"k&", "v=1"}};
  p.index = 42;
  p.wait = std::chrono::milliseconds(1500);
  EXPECT_EQ(ListTarget("a?b", p),
            "/api/v1/services/a%3Fb/instances?namespace=prod&version=v%202&healthy=false"
            "&meta.zone=eu%2Fwest&meta.k%26=v%3D1&index=42&wait=1.5s");
}

TEST(WirePathsTest, ServicesAndWatchTargets) {
  EXPECT_EQ(ServicesTarget(), "/api/v1/services");
  EXPECT_EQ(ServicesTarget("a b"), "/api/v1/services?namespace=a%20b");
  EXPECT_EQ(WatchTarget("", {}), "/api/v1/watch");
  EXPECT_EQ(WatchTarget("prod", {"a", "b/c"}, 7),
            "/api/v1/watch?service=a&service=b%2Fc&namespace=prod&from=7");
}

// A query built by hand keeps its order; keys are escaped like values.
TEST(WirePathsTest, TargetEscapesKeysAndValues) {
  EXPECT_EQ(Target("/x").Param("a b", "c&d").Namespace("").Param("e", "").str(),
            "/x?a%20b=c%26d&e=");
}

}  // namespace
}  // namespace muster::wire
