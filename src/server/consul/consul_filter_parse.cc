// Consul's ?filter= expressions (consul_filter.h): the lexer, the parser
// and Filter::Parse. What a parsed term holds, and how a filter is matched,
// is in consul_filter.cc.
#include "server/consul/consul_filter.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "core/strings.h"
#include "server/consul/consul_filter_internal.h"

namespace muster::consul {

namespace filter_internal {

namespace {

absl::Status SyntaxError(size_t offset, std::string_view what) {
  return absl::InvalidArgumentError(StrCat("filter syntax error at offset ", offset, ": ", what));
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool IsLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// --- lexer ---

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

}  // namespace muster::consul
