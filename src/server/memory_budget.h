// musterd's memory budget: byte sizes as settings take them, and the default
// byte bound of the watch history. docs/operations.md ("Memory") has the
// whole budget: what bounds each part of musterd's memory and how far.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace muster {

// "16777216", "16MiB", "16M", "512KiB", "1GiB": a number with an optional
// binary unit (K, KB, KiB = 1024; M, MB, MiB; G, GB, GiB; B), case
// insensitive, no sign, no fraction.
absl::StatusOr<size_t> ParseByteSize(std::string_view text);
// The shortest exact form ParseByteSize reads back: "256MiB", "1000B".
std::string FormatByteSize(size_t bytes);

// The memory this process may use: the physical memory, or less when a
// cgroup (v2 memory.max, v1 memory.limit_in_bytes) limits it. 0 when unknown.
size_t AvailableMemoryBytes();

// The default of --history-bytes: a sixteenth of AvailableMemoryBytes(), at
// most kHistoryBytesCap and at least kHistoryBytesFloor (also when the memory
// is unknown: then the cap).
inline constexpr size_t kHistoryBytesCap = size_t{256} << 20;
inline constexpr size_t kHistoryBytesFloor = size_t{16} << 20;
size_t DefaultHistoryBytes();

// The default of --max-catalog-bytes: a quarter of AvailableMemoryBytes()
// (4GiB when the memory is unknown).
size_t DefaultCatalogBytes();

}  // namespace muster
