#include "server/memory_budget.h"

#include <string>

#include <gtest/gtest.h>

#include "catalog/event.h"
#include "server/watch_stream.h"

namespace muster {
namespace {

TEST(MemoryBudgetTest, ParsesByteSizes) {
  EXPECT_EQ(*ParseByteSize("16777216"), 16777216u);
  EXPECT_EQ(*ParseByteSize("16MiB"), size_t{16} << 20);
  EXPECT_EQ(*ParseByteSize("16m"), size_t{16} << 20);
  EXPECT_EQ(*ParseByteSize("512KiB"), size_t{512} << 10);
  EXPECT_EQ(*ParseByteSize("2GB"), size_t{2} << 30);
  EXPECT_EQ(*ParseByteSize("100B"), 100u);
  for (const char* bad : {"", "MiB", "-1", "1.5MiB", "16 MiB", "16TiB", "99999999999999999999"}) {
    EXPECT_FALSE(ParseByteSize(bad).ok()) << bad;
  }
  for (size_t n : {size_t{1000}, size_t{1} << 10, size_t{256} << 20, size_t{3} << 30}) {
    EXPECT_EQ(*ParseByteSize(FormatByteSize(n)), n);
  }
  EXPECT_EQ(FormatByteSize(size_t{256} << 20), "256MiB");
}

TEST(MemoryBudgetTest, DefaultHistoryBytesIsAFractionOfMemoryWithinBounds) {
  const size_t bytes = DefaultHistoryBytes();
  EXPECT_GE(bytes, kHistoryBytesFloor);
  EXPECT_LE(bytes, kHistoryBytesCap);
  if (AvailableMemoryBytes() >= (size_t{4} << 30)) {
    EXPECT_EQ(bytes, kHistoryBytesCap);
  }
}

// The history counts an event's text before it is formatted; the count must
// not fall below the text the watch streams then make (and hold while the
// event is retained), including its allocation.
TEST(MemoryBudgetTest, EventTextEstimateBoundsTheFormattedText) {
  auto in = std::make_shared<Instance>();
  in->service = "orders";
  in->id = "orders-1";
  in->address = "10.1.2.3:8080";
  in->modify_revision = 18446744073709551615u;
  for (int k = 0; k < 64; ++k) in->metadata["key" + std::to_string(k)] = std::string(512, '"');
  Check c;
  c.id = "web";
  c.type = CheckType::kHttp;
  c.output = "HTTP 200";
  in->checks.push_back(c);
  for (ChangeType type : {ChangeType::kRegistered, ChangeType::kHealth}) {
    Event e{18446744073709551615u, type, in, "web"};
    const std::string text = FormatEvent(e);
    EXPECT_GE(ApproximateTextBytes(e), text.size());
    EXPECT_LE(ApproximateTextBytes(e), text.size() + 1024);
    // Made at its size: no doubling left over from appends.
    EXPECT_LE(text.capacity(), text.size() + 16);
  }
}

}  // namespace
}  // namespace muster
