#include "server/consul/consul_filter.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <limits>
#include <optional>
#include <regex>

#include "absl/status/status.h"
#include "core/strings.h"
#include "core/utf8.h"
#include "core/validation.h"

namespace muster::consul {

namespace filter_internal {

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

namespace {

constexpr size_t kMaxExpressionBytes = 4096;
constexpr int kMaxDepth = 32;
constexpr size_t kMaxTerms = 256;
constexpr size_t kMaxPatternBytes = 256;
// The units (PatternUnits) that the regular expressions of one filter may
// come to in all: at this size, searching a 512-byte value takes a few
// milliseconds at worst.
constexpr uint64_t kMaxPatternUnits = 256;

// `text` as a message may quote it: valid UTF-8 of at most 64 bytes.
std::string Shown(std::string_view text) {
  const std::string valid = ToValidUtf8(text);
  const std::string_view cut = Utf8Prefix(valid, 64);
  return cut.size() < valid.size() ? StrCat("\"", cut, "...\"") : StrCat("\"", cut, "\"");
}

absl::Status SyntaxError(size_t offset, std::string_view what) {
  return absl::InvalidArgumentError(StrCat("filter syntax error at offset ", offset, ": ", what));
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// --- lexer ---

enum class TokenKind { kEnd, kOpen, kClose, kEqual, kNotEqual, kSelector, kNumber, kString };

struct Token {
  TokenKind kind = TokenKind::kEnd;
  size_t offset = 0;        // where it starts in the expression
  std::string_view source;  // as written
  // kSelector: its segments (Service.Meta["a b"] is Service, Meta, a b).
  std::vector<std::string> path;
  std::string text;  // kNumber: as written; kString: the decoded string
};

// Appends code point `cp` to `out` as UTF-8. `cp` is a Unicode scalar value.
void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Splits an expression into tokens. Whitespace separates tokens and is
// otherwise ignored, except inside string literals.
class Lexer {
 public:
  explicit Lexer(std::string_view in) : in_(in) {}

  // Every token, the last one kEnd.
  absl::StatusOr<std::vector<Token>> Tokens() {
    std::vector<Token> tokens;
    while (true) {
      Token token;
      if (auto s = Next(&token); !s.ok()) return s;
      tokens.push_back(std::move(token));
      if (tokens.back().kind == TokenKind::kEnd) return tokens;
    }
  }

 private:
  absl::Status Next(Token* token) {
    while (pos_ < in_.size() && IsSpace(in_[pos_])) ++pos_;
    token->offset = pos_;
    if (pos_ == in_.size()) return absl::OkStatus();
    const char c = in_[pos_];
    absl::Status status;
    if (c == '(' || c == ')') {
      token->kind = c == '(' ? TokenKind::kOpen : TokenKind::kClose;
      ++pos_;
    } else if (c == '=' || c == '!') {
      if (pos_ + 1 == in_.size() || in_[pos_ + 1] != '=') {
        return SyntaxError(pos_, c == '=' ? "'=' is not an operator (== is)"
                                          : "'!' is not an operator (!= is)");
      }
      token->kind = c == '=' ? TokenKind::kEqual : TokenKind::kNotEqual;
      pos_ += 2;
    } else if (c == '"' || c == '`') {
      token->kind = TokenKind::kString;
      status = ReadString(&token->text);
    } else if (c == '-' || IsDigit(c)) {
      token->kind = TokenKind::kNumber;
      status = ReadNumber(&token->text);
    } else if (IsLetter(c)) {
      token->kind = TokenKind::kSelector;
      status = ReadSelector(&token->path);
    } else if (c >= 0x21 && c <= 0x7E) {
      return SyntaxError(pos_, StrCat("unexpected character '", c, "'"));
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      const auto byte = static_cast<unsigned char>(c);
      return SyntaxError(pos_, StrCat("unexpected byte 0x", kHex[byte >> 4], kHex[byte & 15]));
    }
    token->source = in_.substr(token->offset, pos_ - token->offset);
    return status;
  }

  std::string ReadIdentifier() {
    const size_t start = pos_;
    while (pos_ < in_.size() && (IsLetter(in_[pos_]) || IsDigit(in_[pos_]) || in_[pos_] == '_')) {
      ++pos_;
    }
    return std::string(in_.substr(start, pos_ - start));
  }

  // A selector: a name ([A-Za-z][A-Za-z0-9_]*), then any number of .name,
  // .digits and ["string"] segments.
  absl::Status ReadSelector(std::vector<std::string>* path) {
    path->push_back(ReadIdentifier());
    while (pos_ < in_.size()) {
      const bool dot = in_[pos_] == '.' && pos_ + 1 < in_.size();
      if (dot && IsLetter(in_[pos_ + 1])) {
        ++pos_;
        path->push_back(ReadIdentifier());
      } else if (dot && IsDigit(in_[pos_ + 1])) {
        const size_t start = ++pos_;
        while (pos_ < in_.size() && IsDigit(in_[pos_])) ++pos_;
        path->emplace_back(in_.substr(start, pos_ - start));
      } else if (in_[pos_] == '[') {
        const size_t open = pos_++;
        while (pos_ < in_.size() && IsSpace(in_[pos_])) ++pos_;
        if (pos_ == in_.size() || (in_[pos_] != '"' && in_[pos_] != '`')) {
          return SyntaxError(open, "an index must be a quoted string, as in [\"key\"]");
        }
        std::string key;
        if (auto s = ReadString(&key); !s.ok()) return s;
        while (pos_ < in_.size() && IsSpace(in_[pos_])) ++pos_;
        if (pos_ == in_.size() || in_[pos_] != ']') {
          return SyntaxError(open, "unclosed index expression (no ']')");
        }
        ++pos_;
        path->push_back(std::move(key));
      } else {
        break;
      }
    }
    return absl::OkStatus();
  }

  // A number as bexpr reads one: an optional '-', an integer without
  // leading zeros, an optional fraction; then whitespace, ')' or the end.
  absl::Status ReadNumber(std::string* text) {
    const size_t start = pos_;
    if (in_[pos_] == '-') ++pos_;
    if (pos_ == in_.size() || !IsDigit(in_[pos_])) {
      return SyntaxError(start, "'-' must start a number");
    }
    if (in_[pos_] == '0') {
      ++pos_;
    } else {
      while (pos_ < in_.size() && IsDigit(in_[pos_])) ++pos_;
    }
    if (pos_ + 1 < in_.size() && in_[pos_] == '.' && IsDigit(in_[pos_ + 1])) {
      ++pos_;
      while (pos_ < in_.size() && IsDigit(in_[pos_])) ++pos_;
    }
    if (pos_ < in_.size() && !IsSpace(in_[pos_]) && in_[pos_] != ')') {
      return SyntaxError(start, "invalid number literal");
    }
    *text = std::string(in_.substr(start, pos_ - start));
    return absl::OkStatus();
  }

  // Exactly `count` digits of `base` at pos_, or nullopt.
  std::optional<uint32_t> ReadDigits(size_t count, int base) {
    if (in_.size() - pos_ < count) return std::nullopt;
    uint32_t value = 0;
    const char* first = in_.data() + pos_;
    auto [end, ec] = std::from_chars(first, first + count, value, base);
    if (ec != std::errc() || end != first + count) return std::nullopt;
    pos_ += count;
    return value;
  }

  // A string literal: "double-quoted" with Go's escapes, or `raw` (carriage
  // returns dropped, as Go drops them). Unlike bexpr, which ends a
  // double-quoted string at the first '"', \" is a quote inside one.
  absl::Status ReadString(std::string* out) {
    const size_t start = pos_;
    const char quote = in_[pos_++];
    while (true) {
      if (pos_ == in_.size()) return SyntaxError(start, "unterminated string literal");
      const char c = in_[pos_++];
      if (c == quote) return absl::OkStatus();
      if (quote == '`') {
        if (c != '\r') out->push_back(c);
      } else if (c == '\n') {
        return SyntaxError(start, "a double-quoted string cannot hold a line break (\\n can)");
      } else if (c != '\\') {
        out->push_back(c);
      } else if (auto s = ReadEscape(start, out); !s.ok()) {
        return s;
      }
    }
  }

  // The escape after a backslash inside the string that starts at `start`.
  absl::Status ReadEscape(size_t start, std::string* out) {
    if (pos_ == in_.size()) return SyntaxError(start, "unterminated string literal");
    const size_t at = pos_ - 1;
    const char c = in_[pos_++];
    switch (c) {
      case 'a': out->push_back('\a'); return absl::OkStatus();
      case 'b': out->push_back('\b'); return absl::OkStatus();
      case 'f': out->push_back('\f'); return absl::OkStatus();
      case 'n': out->push_back('\n'); return absl::OkStatus();
      case 'r': out->push_back('\r'); return absl::OkStatus();
      case 't': out->push_back('\t'); return absl::OkStatus();
      case 'v': out->push_back('\v'); return absl::OkStatus();
      case '\\': out->push_back('\\'); return absl::OkStatus();
      case '"': out->push_back('"'); return absl::OkStatus();
      default: break;
    }
    if (c == 'x') {
      const std::optional<uint32_t> byte = ReadDigits(2, 16);
      if (!byte) return SyntaxError(at, "\\x takes two hexadecimal digits");
      out->push_back(static_cast<char>(*byte));
      return absl::OkStatus();
    }
    if (c >= '0' && c <= '7') {
      --pos_;
      const std::optional<uint32_t> byte = ReadDigits(3, 8);
      if (!byte || *byte > 255) return SyntaxError(at, "an octal escape is three digits up to \\377");
      out->push_back(static_cast<char>(*byte));
      return absl::OkStatus();
    }
    if (c == 'u' || c == 'U') {
      const std::optional<uint32_t> cp = ReadDigits(c == 'u' ? 4 : 8, 16);
      if (!cp || *cp > 0x10FFFF || (*cp >= 0xD800 && *cp <= 0xDFFF)) {
        return SyntaxError(at, c == 'u' ? "\\u takes four hexadecimal digits of a code point"
                                        : "\\U takes eight hexadecimal digits of a code point");
      }
      AppendUtf8(*cp, out);
      return absl::OkStatus();
    }
    return SyntaxError(at, StrCat("unknown escape ", Shown(in_.substr(at, 2))));
  }

  std::string_view in_;
  size_t pos_ = 0;
};

// --- selectors, operators, values ---

std::string_view OpName(Op op) {
  switch (op) {
    case Op::kEqual: return "==";
    case Op::kNotEqual: return "!=";
    case Op::kIsEmpty: return "is empty";
    case Op::kIsNotEmpty: return "is not empty";
    case Op::kIn: return "in";
    case Op::kNotIn: return "not in";
    case Op::kMatches: return "matches";
    case Op::kNotMatches: return "not matches";
  }
  return "";
}

Shape ShapeOf(Field field) {
  switch (field) {
    case Field::kServicePort:
    case Field::kServiceWeightsPassing:
    case Field::kServiceWeightsWarning:
      return Shape::kInteger;
    case Field::kServiceTags:
      return Shape::kStringList;
    case Field::kServiceMeta:
      return Shape::kMap;
    case Field::kChecks:
      return Shape::kList;
    default:
      return Shape::kString;
  }
}

// Whether a field of `shape` takes `op` (Consul's table of supported
// operations), and the list a refusal names.
bool Takes(Shape shape, Op op) {
  switch (shape) {
    case Shape::kString:
      return op != Op::kIsEmpty && op != Op::kIsNotEmpty;
    case Shape::kInteger:
      return op == Op::kEqual || op == Op::kNotEqual;
    case Shape::kStringList:
    case Shape::kMap:
      return op == Op::kIn || op == Op::kNotIn || op == Op::kIsEmpty || op == Op::kIsNotEmpty;
    case Shape::kList:
      return op == Op::kIsEmpty || op == Op::kIsNotEmpty;
  }
  return false;
}

std::string_view OperatorsOf(Shape shape) {
  switch (shape) {
    case Shape::kString: return "==, !=, in, not in, contains, not contains, matches, not matches";
    case Shape::kInteger: return "== and !=";
    case Shape::kStringList: return "in, not in, contains, not contains, is empty, is not empty";
    case Shape::kMap: return "in, not in, contains, not contains (a key), is empty, is not empty";
    case Shape::kList: return "is empty and is not empty";
  }
  return "";
}

// True when `path` is the dotted name `name`, segment by segment.
bool PathIs(const std::vector<std::string>& path, std::string_view name) {
  size_t i = 0;
  while (!name.empty()) {
    const size_t dot = std::min(name.find('.'), name.size());
    if (i == path.size() || path[i] != name.substr(0, dot)) return false;
    ++i;
    name.remove_prefix(std::min(dot + 1, name.size()));
  }
  return i == path.size();
}

struct SelectorName {
  std::string_view name;
  Field field;
};

constexpr SelectorName kSelectors[] = {
    {"Node.Node", Field::kNodeNode},
    {"Node.Address", Field::kNodeAddress},
    {"Node.Datacenter", Field::kNodeDatacenter},
    {"Node.ID", Field::kNodeId},
    {"Service.ID", Field::kServiceId},
    {"Service.Service", Field::kServiceService},
    {"Service.Tags", Field::kServiceTags},
    {"Service.Address", Field::kServiceAddress},
    {"Service.Port", Field::kServicePort},
    {"Service.Meta", Field::kServiceMeta},
    {"Service.Weights.Passing", Field::kServiceWeightsPassing},
    {"Service.Weights.Warning", Field::kServiceWeightsWarning},
    {"Service.Namespace", Field::kServiceNamespace},
    {"Checks", Field::kChecks},
    {"Checks.CheckID", Field::kChecksCheckId},
    {"Checks.Status", Field::kChecksStatus},
};

// Selectors that Consul takes for this endpoint (with whatever follows them)
// but whose data this registry does not keep.
constexpr std::string_view kConsulOnlySelectors[] = {
    "Node.Meta",         "Node.TaggedAddresses", "Service.Connect",   "Service.EnableTagOverride",
    "Service.Kind",      "Service.Proxy",        "Service.TaggedAddresses", "Checks.Name",
    "Checks.Node",       "Checks.Notes",         "Checks.Output",     "Checks.ServiceID",
    "Checks.ServiceName", "Checks.ServiceTags",
};

// The field `selector` names, with the metadata key for Service.Meta.<key>.
absl::Status Resolve(const Token& selector, Term* term) {
  const std::vector<std::string>& path = selector.path;
  for (const SelectorName& s : kSelectors) {
    if (PathIs(path, s.name)) {
      term->field = s.field;
      return absl::OkStatus();
    }
  }
  if (path.size() == 3 && path[0] == "Service" && path[1] == "Meta") {
    term->field = Field::kServiceMetaValue;
    term->key = path[2];
    return absl::OkStatus();
  }
  if (path.size() >= 2) {
    const std::vector<std::string> head(path.begin(), path.begin() + 2);
    for (std::string_view name : kConsulOnlySelectors) {
      if (PathIs(head, name)) {
        return absl::InvalidArgumentError(StrCat("filter selector ", Shown(selector.source),
                                                 " is Consul's, but this registry does not keep ",
                                                 name));
      }
    }
  }
  return absl::InvalidArgumentError(
      StrCat("filter selector ", Shown(selector.source), " is not valid"));
}

// The integer `text` spells as Go's strconv.ParseInt(text, 0, 64) reads it,
// which is how bexpr reads a value for an integer field: an optional sign,
// then decimal digits, or 0x/0X hexadecimal, 0o/0O or 0-led octal, 0b/0B
// binary digits; an underscore may stand between two digits or after the
// base prefix.
std::optional<int64_t> ParseInteger(std::string_view text) {
  bool negative = false;
  if (!text.empty() && (text[0] == '+' || text[0] == '-')) {
    negative = text[0] == '-';
    text.remove_prefix(1);
  }
  int base = 10;
  bool prefixed = false;
  if (text.size() >= 2 && text[0] == '0') {
    prefixed = true;
    switch (text[1]) {
      case 'x': case 'X': base = 16; text.remove_prefix(2); break;
      case 'o': case 'O': base = 8; text.remove_prefix(2); break;
      case 'b': case 'B': base = 2; text.remove_prefix(2); break;
      default: base = 8; text.remove_prefix(1); break;
    }
  }
  std::string digits;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '_') {
      digits.push_back(text[i]);
      continue;
    }
    const bool after_digit_or_prefix = i == 0 ? prefixed : text[i - 1] != '_';
    const bool before_digit = i + 1 < text.size() && text[i + 1] != '_';
    if (!after_digit_or_prefix || !before_digit) return std::nullopt;
  }
  uint64_t magnitude = 0;
  const char* end = digits.data() + digits.size();
  auto [stop, ec] = std::from_chars(digits.data(), end, magnitude, base);
  if (digits.empty() || ec != std::errc() || stop != end) return std::nullopt;
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (!negative) {
    if (magnitude > kMax) return std::nullopt;
    return static_cast<int64_t>(magnitude);
  }
  if (magnitude > kMax + 1) return std::nullopt;
  if (magnitude == kMax + 1) return std::numeric_limits<int64_t>::min();
  return -static_cast<int64_t>(magnitude);
}

// The number of copies std::regex makes for the counted repetition that
// starts at pattern[*i] ('{'): n for {n}, n+1 for {n,} (n copies and a
// star), m for {n,m}; *i is left on its '}'. Nullopt when no counted
// repetition starts there. Counts are read up to kMaxRepeat, which is past
// any budget. libstdc++ reads a count into a long before it looks for the
// closing '}', and a count of 19 digits overflows it (undefined behaviour,
// found by fuzz/consul_filter_fuzz), so a count past kMaxRepeat gives
// kMaxRepeat copies even when the brace does not close.
std::optional<uint64_t> RepeatCopies(std::string_view pattern, size_t* i) {
  constexpr uint64_t kMaxRepeat = 1000000;
  auto read = [&](size_t* at, uint64_t* value) {
    const size_t start = *at;
    for (; *at < pattern.size() && IsDigit(pattern[*at]); ++*at) {
      *value = std::min(*value * 10 + static_cast<uint64_t>(pattern[*at] - '0'), kMaxRepeat);
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
  if (n == kMaxRepeat || m == kMaxRepeat) {
    *i = at - 1;
    return kMaxRepeat;
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
      if (const std::optional<uint64_t> copies = RepeatCopies(pattern, &i)) {
        // What a further quantifier would repeat is now all the copies
        // (a{2}{3} is six a's).
        last *= *copies;
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

// The regular expression `pattern`, compiled so that searching a value
// from its start only (match_continuous) finds a match anywhere in it: a
// single pass, where std::regex_search would start over at every position.
// libstdc++'s polynomial mode (its __polynomial extension) runs the
// automaton breadth-first, which bounds both time and stack depth by the
// sizes of the value and the automaton, and refuses back-references.
// `units_left` is what remains of the filter's budget of pattern units
// (PatternUnits); the pattern's are taken from it.
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

// --- parser ---

// Recursive descent over the tokens, one function per precedence level:
//   or-expr  := and-expr ("or" and-expr)*
//   and-expr := not-expr ("and" not-expr)*
//   not-expr := "not" not-expr | "(" or-expr ")" | match
//   match    := selector ("==" | "!=" | ["not"] "contains" | ["not"] "matches") value
//             | selector "is" ["not"] "empty"
//             | value ["not"] "in" selector
// `depth` counts the parentheses and `not`s around the current point.
class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  absl::StatusOr<Node> ParseAll() {
    absl::StatusOr<Node> root = ParseOr(0);
    if (!root.ok()) return root;
    const Token& rest = Peek();
    if (rest.kind == TokenKind::kClose) {
      return SyntaxError(rest.offset, "unbalanced parentheses: this ')' closes nothing");
    }
    if (rest.kind != TokenKind::kEnd) {
      return SyntaxError(rest.offset,
                         StrCat("expected 'and', 'or' or the end, not ", Shown(rest.source)));
    }
    return root;
  }

 private:
  // The token `ahead` places on; the final kEnd past the end.
  const Token& Peek(size_t ahead = 0) const {
    return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)];
  }

  // A keyword is a lower-case word where a one-name selector could stand.
  static bool IsWord(const Token& token, std::string_view word) {
    return token.kind == TokenKind::kSelector && token.path.size() == 1 &&
           token.source == word;
  }

  static bool IsValue(const Token& token) {
    return token.kind == TokenKind::kSelector || token.kind == TokenKind::kNumber ||
           token.kind == TokenKind::kString;
  }

  static std::string Describe(const Token& token) {
    return token.kind == TokenKind::kEnd ? std::string("the end") : Shown(token.source);
  }

  absl::Status TooDeep() const {
    return absl::InvalidArgumentError(
        StrCat("filter nests more than ", kMaxDepth, " levels of parentheses and 'not'"));
  }

  // An or-expr: one and-expr, or an or-node over several.
  absl::StatusOr<Node> ParseOr(int depth) {
    absl::StatusOr<Node> first = ParseAnd(depth);
    if (!first.ok() || !IsWord(Peek(), "or")) return first;
    Node node;
    node.kind = NodeKind::kOr;
    node.children.push_back(*std::move(first));
    while (IsWord(Peek(), "or")) {
      ++pos_;
      absl::StatusOr<Node> next = ParseAnd(depth);
      if (!next.ok()) return next;
      node.children.push_back(*std::move(next));
    }
    return node;
  }

  // An and-expr: one not-expr, or an and-node over several.
  absl::StatusOr<Node> ParseAnd(int depth) {
    absl::StatusOr<Node> first = ParseNot(depth);
    if (!first.ok() || !IsWord(Peek(), "and")) return first;
    Node node;
    node.kind = NodeKind::kAnd;
    node.children.push_back(*std::move(first));
    while (IsWord(Peek(), "and")) {
      ++pos_;
      absl::StatusOr<Node> next = ParseNot(depth);
      if (!next.ok()) return next;
      node.children.push_back(*std::move(next));
    }
    return node;
  }

  absl::StatusOr<Node> ParseNot(int depth) {
    if (IsWord(Peek(), "not")) {
      if (depth >= kMaxDepth) return TooDeep();
      ++pos_;
      absl::StatusOr<Node> operand = ParseNot(depth + 1);
      if (!operand.ok()) return operand;
      Node node;
      node.kind = NodeKind::kNot;
      node.children.push_back(*std::move(operand));
      return node;
    }
    if (Peek().kind == TokenKind::kOpen) {
      if (depth >= kMaxDepth) return TooDeep();
      const size_t open = Peek().offset;
      ++pos_;
      absl::StatusOr<Node> inner = ParseOr(depth + 1);
      if (!inner.ok()) return inner;
      if (Peek().kind == TokenKind::kEnd) {
        return SyntaxError(open, "unbalanced parentheses: this '(' is never closed");
      }
      if (Peek().kind != TokenKind::kClose) {
        return SyntaxError(Peek().offset,
                           StrCat("expected ')', 'and' or 'or', not ", Describe(Peek())));
      }
      ++pos_;
      return inner;
    }
    return ParseMatch();
  }

  absl::StatusOr<Node> ParseMatch() {
    const Token& first = Peek();
    const Token& second = Peek(1);
    if (!IsValue(first)) {
      return SyntaxError(first.offset,
                         StrCat("expected a match expression, not ", Describe(first)));
    }
    // <Value> [not] in <Selector>
    size_t op_tokens = 0;
    if (IsWord(second, "in")) op_tokens = 1;
    if (IsWord(second, "not") && IsWord(Peek(2), "in")) op_tokens = 2;
    if (op_tokens > 0) {
      const Token& selector = Peek(1 + op_tokens);
      if (selector.kind != TokenKind::kSelector) {
        return SyntaxError(selector.offset,
                           StrCat("expected a selector after 'in', not ", Describe(selector)));
      }
      pos_ += 2 + op_tokens;
      return MakeTerm(selector, op_tokens == 1 ? Op::kIn : Op::kNotIn, &first);
    }
    if (first.kind != TokenKind::kSelector) {
      return SyntaxError(first.offset, StrCat("expected a selector, not ", Describe(first),
                                              " (a value comes first only before 'in')"));
    }
    // <Selector> is [not] empty
    if (IsWord(second, "is")) {
      if (IsWord(Peek(2), "empty")) {
        pos_ += 3;
        return MakeTerm(first, Op::kIsEmpty, nullptr);
      }
      if (IsWord(Peek(2), "not") && IsWord(Peek(3), "empty")) {
        pos_ += 4;
        return MakeTerm(first, Op::kIsNotEmpty, nullptr);
      }
      return SyntaxError(Peek(2).offset, "expected 'empty' or 'not empty' after 'is'");
    }
    // <Selector> <operator> <Value>
    Op op = Op::kEqual;
    op_tokens = 1;
    if (second.kind == TokenKind::kEqual) {
      op = Op::kEqual;
    } else if (second.kind == TokenKind::kNotEqual) {
      op = Op::kNotEqual;
    } else if (IsWord(second, "contains")) {
      op = Op::kIn;
    } else if (IsWord(second, "matches")) {
      op = Op::kMatches;
    } else if (IsWord(second, "not") && IsWord(Peek(2), "contains")) {
      op = Op::kNotIn;
      op_tokens = 2;
    } else if (IsWord(second, "not") && IsWord(Peek(2), "matches")) {
      op = Op::kNotMatches;
      op_tokens = 2;
    } else {
      return SyntaxError(second.offset, StrCat("expected an operator after ", Shown(first.source),
                                               ", not ", Describe(second)));
    }
    const Token& value = Peek(1 + op_tokens);
    if (!IsValue(value)) {
      return SyntaxError(value.offset, StrCat("expected a value, not ", Describe(value)));
    }
    pos_ += 2 + op_tokens;
    return MakeTerm(first, op, &value);
  }

  // The match of `selector` by `op` against `value` (null for is empty and
  // is not empty), checked against what the selector takes.
  absl::StatusOr<Node> MakeTerm(const Token& selector, Op op, const Token* value) {
    if (++terms_ > kMaxTerms) {
      return absl::InvalidArgumentError(
          StrCat("filter has more than ", kMaxTerms, " match expressions"));
    }
    Node node;
    Term& term = node.term;
    term.op = op;
    if (auto s = Resolve(selector, &term); !s.ok()) return s;
    const Shape shape = ShapeOf(term.field);
    if (!Takes(shape, op)) {
      return absl::InvalidArgumentError(StrCat("filter operator '", OpName(op),
                                               "' does not apply to selector ",
                                               Shown(selector.source), ", which takes ",
                                               OperatorsOf(shape)));
    }
    if (value == nullptr) return node;
    // A bare word stands for its own text, its segments joined by '.'.
    if (value->kind == TokenKind::kSelector) {
      for (const std::string& segment : value->path) {
        if (!term.value.empty()) term.value.push_back('.');
        term.value += segment;
      }
    } else {
      term.value = value->text;
    }
    if (shape == Shape::kInteger) {
      const std::optional<int64_t> number = ParseInteger(term.value);
      if (!number) {
        return absl::InvalidArgumentError(StrCat("filter value ", Shown(term.value),
                                                 " for selector ", Shown(selector.source),
                                                 " is not an integer"));
      }
      term.number = *number;
    }
    if (op == Op::kMatches || op == Op::kNotMatches) {
      absl::StatusOr<std::shared_ptr<const std::regex>> regex =
          CompilePattern(term.value, &pattern_units_left_);
      if (!regex.ok()) return regex.status();
      term.regex = *std::move(regex);
    }
    return node;
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  size_t terms_ = 0;
  uint64_t pattern_units_left_ = kMaxPatternUnits;
};

// --- evaluation ---

bool MatchString(const Term& term, std::string_view text) {
  switch (term.op) {
    case Op::kEqual: return text == term.value;
    case Op::kNotEqual: return text != term.value;
    case Op::kIn: return text.find(term.value) != std::string_view::npos;
    case Op::kNotIn: return text.find(term.value) == std::string_view::npos;
    case Op::kMatches:
    case Op::kNotMatches: {
      const bool found = std::regex_search(text.begin(), text.end(), *term.regex,
                                           std::regex_constants::match_continuous);
      return term.op == Op::kMatches ? found : !found;
    }
    case Op::kIsEmpty:
    case Op::kIsNotEmpty:
      break;
  }
  return false;
}

bool MatchInteger(const Term& term, int64_t number) {
  return term.op == Op::kEqual ? number == term.number : number != term.number;
}

// Service.Meta.<key> of an instance whose metadata lacks the key: nothing
// equals, contains or matches a missing value.
bool MatchMissing(const Term& term) {
  return term.op == Op::kNotEqual || term.op == Op::kNotIn || term.op == Op::kNotMatches;
}

// Service.Meta: the instance's metadata, with its version as "version".
const std::string* MetaValue(const Instance& in, const std::string& key) {
  if (key == "version" && !in.version.empty()) return &in.version;
  auto it = in.metadata.find(key);
  return it == in.metadata.end() ? nullptr : &it->second;
}

bool MatchTerm(const Term& term, const FilterSubject& subject) {
  const Instance& in = subject.instance;
  switch (term.field) {
    case Field::kNodeNode: return MatchString(term, subject.node);
    case Field::kNodeAddress: return MatchString(term, subject.node_address);
    case Field::kNodeDatacenter: return MatchString(term, subject.datacenter);
    case Field::kNodeId: return MatchString(term, subject.node_id);
    case Field::kServiceId: return MatchString(term, in.id);
    case Field::kServiceService: return MatchString(term, in.service);
    case Field::kServiceNamespace: return MatchString(term, in.ns);
    case Field::kServiceAddress:
    case Field::kServicePort: {
      // A registered address is valid; an invalid one reads as "" and 0.
      auto host_port = SplitHostPort(in.address, AddressUse::kListen);
      if (term.field == Field::kServicePort) {
        return MatchInteger(term, host_port.ok() ? host_port->second : 0);
      }
      return MatchString(term, host_port.ok() ? std::string_view(host_port->first) : "");
    }
    case Field::kServiceWeightsPassing: return MatchInteger(term, in.weight);
    case Field::kServiceWeightsWarning: return MatchInteger(term, 1);
    case Field::kServiceTags: {
      const bool has = std::find(in.tags.begin(), in.tags.end(), term.value) != in.tags.end();
      switch (term.op) {
        case Op::kIn: return has;
        case Op::kNotIn: return !has;
        case Op::kIsEmpty: return in.tags.empty();
        default: return !in.tags.empty();
      }
    }
    case Field::kServiceMeta: {
      const bool empty = in.metadata.empty() && in.version.empty();
      switch (term.op) {
        case Op::kIn: return MetaValue(in, term.value) != nullptr;
        case Op::kNotIn: return MetaValue(in, term.value) == nullptr;
        case Op::kIsEmpty: return empty;
        default: return !empty;
      }
    }
    case Field::kServiceMetaValue: {
      const std::string* value = MetaValue(in, term.key);
      return value == nullptr ? MatchMissing(term) : MatchString(term, *value);
    }
    case Field::kChecks:
      return term.op == Op::kIsEmpty ? subject.checks.empty() : !subject.checks.empty();
    case Field::kChecksCheckId:
    case Field::kChecksStatus:
      // As bexpr reaches through a list: the match holds for some check.
      return std::any_of(subject.checks.begin(), subject.checks.end(), [&](const auto& check) {
        return MatchString(term, term.field == Field::kChecksCheckId ? check.first : check.second);
      });
  }
  return false;
}

bool Evaluate(const Node& node, const FilterSubject& subject) {
  switch (node.kind) {
    case NodeKind::kAnd:
      return std::all_of(node.children.begin(), node.children.end(),
                         [&](const Node& child) { return Evaluate(child, subject); });
    case NodeKind::kOr:
      return std::any_of(node.children.begin(), node.children.end(),
                         [&](const Node& child) { return Evaluate(child, subject); });
    case NodeKind::kNot:
      return !Evaluate(node.children.front(), subject);
    case NodeKind::kTerm:
      return MatchTerm(node.term, subject);
  }
  return false;
}

}  // namespace
}  // namespace filter_internal

absl::StatusOr<Filter> Filter::Parse(std::string_view expression) {
  using filter_internal::kMaxExpressionBytes;
  if (expression.size() > kMaxExpressionBytes) {
    return absl::InvalidArgumentError(
        StrCat("filter is longer than ", kMaxExpressionBytes, " bytes"));
  }
  absl::StatusOr<std::vector<filter_internal::Token>> tokens =
      filter_internal::Lexer(expression).Tokens();
  if (!tokens.ok()) return tokens.status();
  if (tokens->size() == 1) return Filter(nullptr);  // nothing but whitespace
  absl::StatusOr<filter_internal::Node> root =
      filter_internal::Parser(*std::move(tokens)).ParseAll();
  if (!root.ok()) return root.status();
  return Filter(std::make_shared<const filter_internal::Node>(*std::move(root)));
}

bool Filter::Matches(const FilterSubject& subject) const {
  return root_ == nullptr || filter_internal::Evaluate(*root_, subject);
}

}  // namespace muster::consul
