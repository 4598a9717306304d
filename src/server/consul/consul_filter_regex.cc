// The guard on the regular expressions of Consul's ?filter= expressions
// (consul_filter.h, "Regular expressions are guarded"): the size a pattern
// comes to, and its compilation for a single pass over a value.
#include "server/consul/consul_filter_internal.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <regex>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "core/strings.h"

namespace muster::consul::filter_internal {

namespace {

// The largest count a counted repetition may give, as in Go's RE2 syntax,
// which Consul uses.
constexpr uint64_t kMaxRepeatCount = 1000;

// The number of copies std::regex makes for the counted repetition that
// starts at pattern[*i] ('{'): n for {n}, n+1 for {n,} (n copies and a
// star), m for {n,m}; *i is left on its '}'. Nullopt when no counted
// repetition starts there; InvalidArgument for a count over
// kMaxRepeatCount. libstdc++ reads a count into a long before it looks for
// the closing '}', and a count of 19 digits overflows it (undefined
// behaviour, found by fuzz/consul_filter_fuzz), so a count that is too large
// is refused even when the brace does not close, and whatever it repeats
// (a{0}{99999999999999999999} repeats nothing, and overflowed all the same).
absl::StatusOr<std::optional<uint64_t>> RepeatCopies(std::string_view pattern, size_t* i) {
  auto read = [&](size_t* at, uint64_t* value) {
    const size_t start = *at;
    for (; *at < pattern.size() && IsDigit(pattern[*at]); ++*at) {
      *value = std::min(*value * 10 + static_cast<uint64_t>(pattern[*at] - '0'),
                        kMaxRepeatCount + 1);
    }
    return *at > start;
  };
  size_t at = *i + 1;
  uint64_t n = 0;
  uint64_t m = 0;
  if (!read(&at, &n)) return std::nullopt;
  uint64_t copies = n;
  if (at < pattern.size() && pattern[at] == ',') {
    ++at;
    copies = read(&at, &m) ? std::max(n, m) : n + 1;
  }
  if (n > kMaxRepeatCount || m > kMaxRepeatCount) {
    return absl::InvalidArgumentError(StrCat("filter regular expression ", Shown(pattern),
                                             " repeats too much: a repetition count is at most ",
                                             kMaxRepeatCount));
  }
  if (at == pattern.size() || pattern[at] != '}') return std::nullopt;
  *i = at;
  return copies;
}

absl::Status BackReference(std::string_view pattern) {
  return absl::InvalidArgumentError(StrCat("filter regular expression ", Shown(pattern),
                                           " uses a back-reference, which is not supported"));
}

// The size of the automaton std::regex builds for `pattern`, estimated from
// above, or InvalidArgument for a pattern with a lookahead or a
// back-reference. The estimate is
// one unit per character, class, escape, operator and group, with a counted
// repetition multiplying the size of what it repeats, since std::regex
// copies the repeated part that many times: (a{100}){100} is ten thousand
// units in a 13-byte pattern. The estimate stops growing past `limit`.
absl::StatusOr<uint64_t> PatternUnits(std::string_view pattern, uint64_t limit) {
  // The size so far of each group still open (the whole pattern first),
  // and the size of the last thing a quantifier would repeat.
  std::vector<uint64_t> open = {0};
  uint64_t last = 0;
  for (size_t i = 0; i < pattern.size() && open.back() <= limit; ++i) {
    const char c = pattern[i];
    uint64_t atom = 1;
    if (c == '\\') {
      // \1 to \9 start a back-reference, which libstdc++ reads as a number
      // of any length before refusing it.
      if (i + 1 < pattern.size() && pattern[i + 1] >= '1' && pattern[i + 1] <= '9') {
        return BackReference(pattern);
      }
      ++i;  // the escaped character belongs to this atom
    } else if (c == '[') {
      // A class is one atom; it ends at the first ']' not escaped.
      for (++i; i < pattern.size() && pattern[i] != ']'; ++i) {
        if (pattern[i] == '\\') ++i;
      }
    } else if (c == '(') {
      const std::string_view next = pattern.substr(i + 1, 2);
      if (next == "?=" || next == "?!") {
        return absl::InvalidArgumentError(StrCat("filter regular expression ", Shown(pattern),
                                                 " uses a lookahead, which is not supported"));
      }
      open.push_back(0);
      last = 0;
      continue;
    } else if (c == ')' && open.size() > 1) {
      atom = open.back() + 1;
      open.pop_back();
    } else if (c == '{') {
      const absl::StatusOr<std::optional<uint64_t>> copies = RepeatCopies(pattern, &i);
      if (!copies.ok()) return copies.status();
      if (copies->has_value()) {
        // What a further quantifier would repeat is now all the copies
        // (a{2}{3} is six a's).
        last *= **copies;
        open.back() += last;
        continue;
      }
    }
    open.back() += atom;
    last = atom;
  }
  uint64_t total = 0;
  for (uint64_t size : open) total += size;
  return total;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const std::regex>> CompilePattern(std::string_view pattern,
                                                                 uint64_t* units_left) {
  if (pattern.size() > kMaxPatternBytes) {
    return absl::InvalidArgumentError(StrCat("filter regular expression ", Shown(pattern),
                                             " is longer than ", kMaxPatternBytes, " bytes"));
  }
  const absl::StatusOr<uint64_t> units = PatternUnits(pattern, *units_left);
  if (!units.ok()) return units.status();
  if (*units > *units_left) {
    return absl::InvalidArgumentError(StrCat(
        "filter regular expression ", Shown(pattern), " repeats too much: the regular ",
        "expressions of a filter may expand to ", kMaxPatternUnits, " atoms in all"));
  }
  *units_left -= *units;
  constexpr auto kSyntax =
      std::regex::ECMAScript | std::regex::nosubs | std::regex_constants::__polynomial;
  try {
    // The pattern alone first: wrapped, an unbalanced one such as "a)(b"
    // would pass.
    const std::regex alone(pattern.begin(), pattern.end(), kSyntax);
    return std::make_shared<const std::regex>(StrCat("[\\s\\S]*(?:", pattern, ")"), kSyntax);
  } catch (const std::regex_error& e) {
    if (e.code() == std::regex_constants::error_complexity) return BackReference(pattern);
    return absl::InvalidArgumentError(
        StrCat("filter regular expression ", Shown(pattern), " is not valid: ", e.what()));
  }
}

}  // namespace muster::consul::filter_internal
