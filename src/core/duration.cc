#include "core/duration.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "core/strings.h"
#include "core/utf8.h"

namespace muster {

absl::StatusOr<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  auto bad = [&] {
    return absl::InvalidArgumentError(StrCat(
        "bad duration \"", Utf8Prefix(text, 32), "\": expected e.g. 500ms, 30s, 5m, 1h"));
  };
  if (text.empty() || text.size() > 32) return bad();
  double total_ms = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    bool dot = false;
    while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || (text[i] == '.' && !dot))) {
      dot |= text[i] == '.';
      ++i;
    }
    if (i == start) return bad();
    double value = 0;
    auto [end, ec] = std::from_chars(text.data() + start, text.data() + i, value);
    if (ec != std::errc() || end != text.data() + i) return bad();
    size_t unit_start = i;
    while (i < text.size() && ((text[i] >= 'a' && text[i] <= 'z') || text[i] == 'u')) ++i;
    std::string_view unit = text.substr(unit_start, i - unit_start);
    double scale;
    if (unit.empty()) {
      if (start != 0 || i != text.size()) return bad();  // bare number only on its own
      scale = 1000;
    } else if (unit == "h") {
      scale = 3600e3;
    } else if (unit == "m") {
      scale = 60e3;
    } else if (unit == "s") {
      scale = 1e3;
    } else if (unit == "ms") {
      scale = 1;
    } else if (unit == "us") {
      scale = 1e-3;
    } else if (unit == "ns") {
      scale = 1e-6;
    } else {
      return bad();
    }
    total_ms += value * scale;
  }
  if (!std::isfinite(total_ms) || total_ms > 1e12) return bad();
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(total_ms)));
}

std::string FormatDuration(std::chrono::milliseconds d) {
  int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  if (ms < 1000) return StrCat(out, ms, "ms");
  int64_t h = ms / 3600000, m = (ms / 60000) % 60, s = (ms / 1000) % 60, rest = ms % 1000;
  if (h) StrAppend(&out, h, "h");
  if (m) StrAppend(&out, m, "m");
  if (s || rest) {
    if (rest) {
      std::string frac = StrCat(1000 + rest).substr(1);
      while (!frac.empty() && frac.back() == '0') frac.pop_back();
      StrAppend(&out, s, ".", frac, "s");
    } else {
      StrAppend(&out, s, "s");
    }
  }
  return out;
}

std::string FormatTimestamp(std::chrono::system_clock::time_point t) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  char out[96];  // room for any int the format could see
  std::snprintf(out, sizeof out, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(((ms % 1000) + 1000) % 1000));
  return out;
}

}  // namespace muster
