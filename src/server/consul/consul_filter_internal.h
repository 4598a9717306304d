// The pieces of Consul's ?filter= expressions (consul_filter.h) that its
// files share. The lexer, the parser and Filter::Parse are in
// consul_filter_parse.cc; the selectors, operators and values, the
// evaluation and Filter::Matches in consul_filter.cc; the guard on regular
// expressions in consul_filter_regex.cc. Private to those files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/consul/consul_filter.h"

namespace muster::consul::filter_internal {

// What a selector names.
enum class Field {
  kNodeNode,
  kNodeAddress,
  kNodeDatacenter,
  kNodeId,
  kServiceId,
  kServiceService,
  kServiceTags,
  kServiceAddress,
  kServicePort,
  kServiceMeta,
  kServiceMetaValue,  // Service.Meta.<key>
  kServiceWeightsPassing,
  kServiceWeightsWarning,
  kServiceNamespace,
  kChecks,
  kChecksCheckId,
  kChecksStatus,
};

// The kind of value a field holds, which decides the operators it takes.
enum class Shape {
  kString,      // ==, !=, in, not in, matches, not matches
  kInteger,     // ==, !=
  kStringList,  // in, not in, is empty, is not empty
  kMap,         // in, not in (a key), is empty, is not empty
  kList,        // is empty, is not empty
};

// `contains` and `not contains` are kIn and kNotIn with the operands
// swapped, as in bexpr.
enum class Op { kEqual, kNotEqual, kIsEmpty, kIsNotEmpty, kIn, kNotIn, kMatches, kNotMatches };

// One match expression, ready to evaluate.
struct Term {
  Field field = Field::kNodeNode;
  Op op = Op::kEqual;
  std::string key;    // kServiceMetaValue: the metadata key
  std::string value;  // the value as text (none for is empty / is not empty)
  int64_t number = 0;  // kInteger fields: the value read as an integer
  // matches / not matches: the pattern, compiled to match anywhere in a
  // value when searched from the value's start (see CompilePattern).
  std::shared_ptr<const std::regex> regex;
};

enum class NodeKind { kAnd, kOr, kNot, kTerm };

struct Node {
  NodeKind kind = NodeKind::kTerm;
  std::vector<Node> children;  // kAnd, kOr: two or more; kNot: one
  Term term;                   // kTerm
};

// The limits on a filter that consul_filter.h lists.
inline constexpr size_t kMaxExpressionBytes = 4096;
inline constexpr int kMaxDepth = 32;
inline constexpr size_t kMaxTerms = 256;
inline constexpr size_t kMaxPatternBytes = 256;
// The units (PatternUnits) that the regular expressions of one filter may
// come to in all: at this size, searching a 512-byte value takes a few
// milliseconds at worst.
inline constexpr uint64_t kMaxPatternUnits = 256;

// True for an ASCII digit.
inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// The lexer's tokens (consul_filter_parse.cc); Resolve reads a selector's.
enum class TokenKind { kEnd, kOpen, kClose, kEqual, kNotEqual, kSelector, kNumber, kString };

struct Token {
  TokenKind kind = TokenKind::kEnd;
  size_t offset = 0;        // where it starts in the expression
  std::string_view source;  // as written
  // kSelector: its segments (Service.Meta["a b"] is Service, Meta, a b).
  std::vector<std::string> path;
  std::string text;  // kNumber: as written; kString: the decoded string
};

// --- consul_filter.cc ---

// `text` as a message may quote it: valid UTF-8 of at most 64 bytes.
std::string Shown(std::string_view text);

// The operator as a filter spells it ("==", "not in", ...).
std::string_view OpName(Op op);

// The kind of value `field` holds.
Shape ShapeOf(Field field);

// Whether a field of `shape` takes `op` (Consul's table of supported
// operations).
bool Takes(Shape shape, Op op);

// The operators a field of `shape` takes, as a refusal lists them.
std::string_view OperatorsOf(Shape shape);

// The field `selector` names, with the metadata key for Service.Meta.<key>.
absl::Status Resolve(const Token& selector, Term* term);

// The integer `text` spells as Go's strconv.ParseInt(text, 0, 64) reads it,
// which is how bexpr reads a value for an integer field: an optional sign,
// then decimal digits, or 0x/0X hexadecimal, 0o/0O or 0-led octal, 0b/0B
// binary digits; an underscore may stand between two digits or after the
// base prefix.
std::optional<int64_t> ParseInteger(std::string_view text);

// --- consul_filter_regex.cc ---

// The regular expression `pattern`, compiled so that searching a value
// from its start only (match_continuous) finds a match anywhere in it: a
// single pass, where std::regex_search would start over at every position.
// libstdc++'s polynomial mode (its __polynomial extension) runs the
// automaton breadth-first, which bounds both time and stack depth by the
// sizes of the value and the automaton, and refuses back-references.
// `units_left` is what remains of the filter's budget of pattern units
// (PatternUnits); the pattern's are taken from it.
absl::StatusOr<std::shared_ptr<const std::regex>> CompilePattern(std::string_view pattern,
                                                                 uint64_t* units_left);

}  // namespace muster::consul::filter_internal
