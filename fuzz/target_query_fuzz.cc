// Request targets and the query values musterd reads from them:
// ParseTarget (server/url.h) on the raw target, then what the list and watch
// endpoints do with their parameters short of the catalog: names through
// ValidateName, wait= through ParseDuration (core/duration.h), which also
// reads every duration of the configuration and of checks.
//
// Properties, beyond not crashing under ASan and UBSan:
// - only a malformed percent-escape fails ParseTarget;
// - a parsed target, percent-encoded again, parses to the same segments and
//   parameters; Param is the first of All;
// - a duration that parses is 0..1e12 ms, and FormatDuration spells it so
//   that it parses back to the same value; one that does not is
//   InvalidArgument with a UTF-8 message when the text was UTF-8;
// - a name that ValidateName accepts has only [A-Za-z0-9._-].
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/duration.h"
#include "core/validation.h"
#include "fuzz_support.h"
#include "server/url.h"

namespace muster::fuzz {
namespace {

std::string PercentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

void CheckDuration(std::string_view text) {
  absl::StatusOr<std::chrono::milliseconds> d = ParseDuration(text);
  if (!d.ok()) {
    CheckError(d.status(), absl::StatusCode::kInvalidArgument, IsUtf8(text), text);
    return;
  }
  FUZZ_CHECK(d->count() >= 0 && d->count() <= 1'000'000'000'000,
             StrCat(Escaped(text), " parsed to ", d->count(), " ms"));
  const std::string spelled = FormatDuration(*d);
  absl::StatusOr<std::chrono::milliseconds> back = ParseDuration(spelled);
  FUZZ_CHECK(back.ok() && *back == *d,
             StrCat(Escaped(text), " is ", d->count(), " ms, spelled ", spelled, ", read back as ",
                    back.ok() ? StrCat(back->count(), " ms") : back.status().ToString()));
}

void CheckName(std::string_view what, std::string_view name) {
  const Limits limits;
  absl::Status s = ValidateName(what, name, limits);
  if (!s.ok()) {
    CheckError(s, absl::StatusCode::kInvalidArgument, IsUtf8(name), name);
    return;
  }
  for (char c : name) {
    FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '.' || c == '_' || c == '-',
               StrCat("accepted name ", Escaped(name)));
  }
}

void CheckTarget(std::string_view raw) {
  std::optional<Target> t = ParseTarget(raw);
  if (!t) {
    FUZZ_CHECK(raw.find('%') != std::string_view::npos,
               StrCat("refused without a percent-escape: ", Escaped(raw)));
    return;
  }
  std::string again;
  for (const std::string& seg : t->segments) {
    FUZZ_CHECK(!seg.empty(), StrCat("empty segment from ", Escaped(raw)));
    StrAppend(&again, "/", PercentEncode(seg));
  }
  if (!t->query.empty()) {
    again.push_back('?');
    for (size_t i = 0; i < t->query.size(); ++i) {
      StrAppend(&again, i ? "&" : "", PercentEncode(t->query[i].first), "=",
                PercentEncode(t->query[i].second));
    }
  }
  std::optional<Target> t2 = ParseTarget(again);
  FUZZ_CHECK(t2 && t2->segments == t->segments,
             StrCat("segments differ after re-encoding ", Escaped(raw), " as ", Escaped(again)));
  // An empty key and value ("?=") encode to a pair that parses again to
  // the same; only empty pairs ("&&") are dropped, and they never come out.
  FUZZ_CHECK(t2->query == t->query,
             StrCat("parameters differ after re-encoding ", Escaped(raw), " as ", Escaped(again)));
  // Param and All scan every parameter: the first few keys are enough (a
  // check of every key made long targets quadratic, the harness's cost).
  for (size_t i = 0; i < t->query.size() && i < 8; ++i) {
    const std::string& key = t->query[i].first;
    std::optional<std::string> first = t->Param(key);
    std::vector<std::string> all = t->All(key);
    FUZZ_CHECK(first && !all.empty() && *first == all.front(),
               StrCat("Param and All disagree on ", Escaped(key)));
  }
  // The list and watch endpoints' parameters.
  for (const auto& [key, value] : t->query) {
    if (key == "wait") CheckDuration(value);
    if (key == "namespace" || key == "service" || key == "version") CheckName(key, value);
  }
  for (const std::string& seg : t->segments) CheckName("segment", seg);
}

}  // namespace
}  // namespace muster::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view raw(reinterpret_cast<const char*>(data), size);
  muster::fuzz::CheckTarget(raw);
  muster::fuzz::CheckDuration(raw);
  return 0;
}
