#include "core/footprint.h"

#include <string>

#include <gtest/gtest.h>

#include "core/json_codec.h"

namespace muster {
namespace {

Instance Sample() {
  Instance in;
  in.service = "orders";
  in.id = "orders-1";
  in.version = "1.4.2";
  in.address = "10.1.2.3:8080";
  in.create_revision = 18446744073709551615u;  // the longest numbers
  in.modify_revision = 18446744073709551615u;
  in.weight = 10000;
  in.ttl_seconds = 86400;
  return in;
}

// The JSON estimate is never below what the codec writes, and close above it,
// for plain strings, strings that need escapes, big metadata and checks.
TEST(FootprintTest, JsonEstimateBoundsTheSerializedInstance) {
  std::vector<Instance> cases;
  cases.push_back(Sample());
  Instance escaped = Sample();
  escaped.metadata["quote\"back\\slash"] = "tab\tnew\nline\x01\x1f\x7f and \xc3\xa9";
  cases.push_back(escaped);
  Instance big = Sample();
  for (int k = 0; k < 64; ++k) big.metadata["key" + std::to_string(k)] = std::string(512, 'v');
  cases.push_back(big);
  Instance tagged = Sample();
  for (int t = 0; t < 64; ++t) tagged.tags.push_back("tag\"" + std::string(120, 't') + std::to_string(t));
  cases.push_back(tagged);
  Instance checked = Sample();
  for (CheckType type : {CheckType::kTtl, CheckType::kHttp, CheckType::kTcp, CheckType::kGrpc,
                         CheckType::kScript}) {
    Check c;
    c.id = "check-" + std::string(ToString(type));
    c.type = type;
    c.target = "http://10.1.2.3:8080/health";
    c.interval = std::chrono::hours(23) + std::chrono::minutes(59) + std::chrono::milliseconds(999);
    c.timeout = std::chrono::minutes(4) + std::chrono::milliseconds(999);
    c.deregister_critical_after = std::chrono::hours(100) + std::chrono::milliseconds(1);
    c.rise = 4294967295u;
    c.fall = 4294967295u;
    c.headers["Authorization"] = "Bearer x";
    c.args = {"--one", "--two"};
    c.grpc_service = "grpc.health.v1.Health";
    c.output = "HTTP 503 \"down\"";
    c.status = Health::kWarning;
    checked.checks.push_back(c);
  }
  cases.push_back(checked);
  for (const Instance& in : cases) {
    const size_t actual = SerializeInstance(in).size();
    const size_t estimate = ApproximateJsonBytes(in);
    EXPECT_GE(estimate, actual) << SerializeInstance(in);
    EXPECT_LE(estimate, actual + 256 + 320 * in.checks.size()) << SerializeInstance(in);
  }
}

// An instance's memory counts its metadata at what the allocator holds for it
// (nodes, and the values' heap blocks), not just the characters.
TEST(FootprintTest, InstanceBytesCountMetadataNodes) {
  Instance small = Sample();
  const size_t base = ApproximateBytes(small);
  EXPECT_GE(base, sizeof(Instance));
  EXPECT_LT(base, 1024u);
  Instance big = Sample();
  for (int k = 0; k < 64; ++k) big.metadata["key" + std::to_string(k)] = std::string(512, 'v');
  const size_t bytes = ApproximateBytes(big);
  // 32 KiB of values, plus per entry a tree node and the value's block header.
  EXPECT_GE(bytes, base + 64 * (512 + 96));
  EXPECT_LE(bytes, base + 64 * (512 + 160));
}

TEST(FootprintTest, HeapBlocksAndStrings) {
  EXPECT_EQ(HeapBlockBytes(0), 0u);
  EXPECT_EQ(HeapBlockBytes(1), 32u);
  EXPECT_EQ(HeapBlockBytes(24), 32u);
  EXPECT_EQ(HeapBlockBytes(25), 48u);
  EXPECT_EQ(HeapBytes(std::string("short")), 0u);
  EXPECT_EQ(HeapBytes(std::string(100, 'x')), HeapBlockBytes(101));
  EXPECT_EQ(JsonStringBytes("a\"b"), 6u);
  EXPECT_EQ(JsonStringBytes(std::string("\x01", 1)), 8u);
}

}  // namespace
}  // namespace muster
