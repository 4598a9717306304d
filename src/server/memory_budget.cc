#include "server/memory_budget.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <limits>

#include "core/strings.h"

namespace muster {
namespace {

// A cgroup limit from its file: a number of bytes, or 0 for none ("max", a
// missing file, or the huge value cgroup v1 reports when nothing is set).
size_t CgroupLimit(const char* path) {
  std::ifstream in(path);
  std::string text;
  if (!(in >> text)) return 0;
  size_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return 0;
  return value >= (size_t{1} << 60) ? 0 : value;
}

}  // namespace

absl::StatusOr<size_t> ParseByteSize(std::string_view text) {
  auto bad = [&] {
    return absl::InvalidArgumentError(StrCat("\"", text,
                                             "\" is not a byte size (e.g. 16777216, 512KiB, "
                                             "16MiB, 1GiB)"));
  };
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  if (digits == 0) return bad();
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + digits, value);
  if (ec != std::errc()) return bad();
  std::string unit(text.substr(digits));
  for (char& ch : unit) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  int shift = -1;
  if (unit.empty() || unit == "b") shift = 0;
  if (unit == "k" || unit == "kb" || unit == "kib") shift = 10;
  if (unit == "m" || unit == "mb" || unit == "mib") shift = 20;
  if (unit == "g" || unit == "gb" || unit == "gib") shift = 30;
  if (shift < 0) return bad();
  if (value > (std::numeric_limits<size_t>::max() >> shift)) return bad();
  return static_cast<size_t>(value) << shift;
}

std::string FormatByteSize(size_t bytes) {
  if (bytes != 0 && bytes % (size_t{1} << 30) == 0) return StrCat(bytes >> 30, "GiB");
  if (bytes != 0 && bytes % (size_t{1} << 20) == 0) return StrCat(bytes >> 20, "MiB");
  if (bytes != 0 && bytes % (size_t{1} << 10) == 0) return StrCat(bytes >> 10, "KiB");
  return StrCat(bytes, "B");
}

size_t AvailableMemoryBytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGESIZE);
  size_t memory = pages > 0 && page_size > 0 ? static_cast<size_t>(pages) * page_size : 0;
  for (const char* path : {"/sys/fs/cgroup/memory.max",
                           "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    const size_t limit = CgroupLimit(path);
    if (limit != 0 && (memory == 0 || limit < memory)) memory = limit;
  }
  return memory;
}

size_t DefaultHistoryBytes() {
  const size_t memory = AvailableMemoryBytes();
  if (memory == 0) return kHistoryBytesCap;
  return std::clamp(memory / 16, kHistoryBytesFloor, kHistoryBytesCap);
}

size_t DefaultCatalogBytes() {
  const size_t memory = AvailableMemoryBytes();
  return memory == 0 ? size_t{4} << 30 : memory / 4;
}

}  // namespace muster
