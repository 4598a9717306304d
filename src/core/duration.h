// Go-style duration strings ("500ms", "30s", "5m", "1h30m", "1.5s"), as used
// by wait= and the configuration. A bare number is taken as seconds.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace muster {

absl::StatusOr<std::chrono::milliseconds> ParseDuration(std::string_view text);

// The shortest Go-style spelling of d ("1m30s", "250ms", "0s").
std::string FormatDuration(std::chrono::milliseconds d);

// RFC 3339 in UTC with milliseconds: "2026-11-22T08:30:00.250Z".
std::string FormatTimestamp(std::chrono::system_clock::time_point t);

}  // namespace muster
