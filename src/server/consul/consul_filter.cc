// Consul's ?filter= expressions (consul_filter.h): the selectors, operators
// and values a parsed filter holds, and its evaluation. The lexer and the
// parser are in consul_filter_parse.cc, the guard on regular expressions in
// consul_filter_regex.cc.
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
#include "server/consul/consul_filter_internal.h"

namespace muster::consul {

namespace filter_internal {

std::string Shown(std::string_view text) { return QuotedPrefix(text); }

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

namespace {

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

}  // namespace

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

// --- evaluation ---

namespace {

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

bool Filter::Matches(const FilterSubject& subject) const {
  return root_ == nullptr || filter_internal::Evaluate(*root_, subject);
}

}  // namespace muster::consul
