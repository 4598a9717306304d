// Consul's ?filter= expressions (the language of HashiCorp's go-bexpr) for
// the entries of GET /v1/health/service/{name}: parsed once per request,
// then asked of every entry.
//
// The language, as Consul documents it for this endpoint:
//
//   <Selector> == <Value>            <Selector> != <Value>
//   <Selector> is empty              <Selector> is not empty
//   <Value> in <Selector>            <Value> not in <Selector>
//   <Selector> contains <Value>      <Selector> not contains <Value>
//   <Selector> matches <Value>       <Selector> not matches <Value>
//
// joined with `and`, `or`, `not` and parentheses; `not` binds tighter than
// `and`, and `and` tighter than `or`. Keywords are lower case. A value is a
// "double-quoted" string (backslash escapes as in Go: \n, \t, \\, \",
// \xHH, \ooo, \uHHHH, \UHHHHHHHH, ...), a `backquoted` raw string, a number
// (-12, 3.5) or a bare selector-like word, which stands for its own text
// (Service.Service == web is Service.Service == "web").
//
// Selectors (case-sensitive, as Consul's) and the operators each takes,
// from Consul's table for this endpoint:
//
//   Node.Node, Node.Address, Node.Datacenter, Node.ID, Service.ID,
//   Service.Service, Service.Address, Service.Namespace,
//   Service.Meta.<key> (also Service.Meta["<key>"]),
//   Checks.CheckID, Checks.Status        ==, !=, in, not in, matches, not matches
//   Service.Port, Service.Weights.Passing,
//   Service.Weights.Warning              ==, != (the value read as an integer)
//   Service.Tags                         in, not in, is empty, is not empty
//   Service.Meta                         in, not in (a key), is empty, is not empty
//   Checks                               is empty, is not empty
//
// `in` on a string selector is a substring test; `contains` is `in` with
// the operands swapped. Integers are read as Go's ParseInt with base 0 reads
// them ("8080", "0x1f90", "0o17", "1_000"). Regular expressions are
// std::regex ECMAScript, searched anywhere in the value (as Go's
// regexp.Match), byte by byte rather than by UTF-8 character.
//
// Semantics, as bexpr's (the versions with Consul's table) unless said:
// - A Checks.<field> selector reaches through the list of checks: the match
//   holds when it holds for at least one check, negated operators included
//   (Checks.Status != "passing" holds when some check is not passing, and
//   never for an entry without checks).
// - A Service.Meta key that the entry does not have satisfies !=, not in and
//   not matches, and fails ==, in and matches. (bexpr lets `matches` hold on
//   a missing key too, which looks like an oversight and is not copied.)
// - An empty expression (or one of only whitespace) matches every entry, as
//   Consul treats an empty ?filter=.
// - Also unlike bexpr: a double-quoted string may hold \" (bexpr ends it at
//   the first '"'); keywords need no whitespace next to a quote or a
//   parenthesis (not(...) is an error in bexpr); the JSON-pointer selectors
//   of newer bexpr ("/Service/ID") are not supported; and regular
//   expressions are ECMAScript, not Go's RE2 (no (?i) flags, no \pL).
//
// Every refusal is InvalidArgument with a message naming what is wrong (Consul
// answers 400): a syntax error, an unknown selector (and the Consul
// selectors this registry does not keep: Node.Meta, Node.TaggedAddresses,
// Service.Kind, Service.Proxy..., Checks.Name, ...), an operator the selector
// does not take, an integer value that is not one, a regular expression that
// std::regex refuses or that is outside the guarded subset below, and an
// expression over the limits: 4096 bytes, 32 levels of parentheses and
// `not`, 256 match terms.
//
// Regular expressions are guarded so that no filter can make evaluation slow
// or deep: a pattern is at most 256 bytes; back-references and lookaheads
// are refused (neither is in Go's RE2 syntax, which Consul uses), and so is
// a repetition count over 1000 (as RE2 refuses it); the
// patterns of one filter, their counted repetitions expanded, come to at most
// an estimated 256 atoms in all; and matching runs in libstdc++'s polynomial
// mode, in one pass over the value. The worst filter then costs a few
// milliseconds for each 512 bytes of value it searches.
//
// Example:
//   auto filter = Filter::Parse(R"(Service.Tags contains "primary" and Service.Port == 8080)");
//   if (!filter.ok()) return BadRequest(filter.status());
//   for (...) if (filter->Matches(subject)) out.push_back(...);
//
// A Filter is immutable once parsed: copies share it, and Matches may run on
// any number of threads at once.
//
// The lexer, the parser and Parse are in consul_filter_parse.cc; the
// selectors, the evaluation and Matches in consul_filter.cc; the guard on
// regular expressions in consul_filter_regex.cc; what they share in
// consul_filter_internal.h.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "muster/instance.h"

namespace muster::consul {

// What a filter sees of one health entry. The instance gives the Service
// fields: Service.ID is its id, Service.Service its service, Service.Tags its
// tags, Service.Address and Service.Port the host and port of its address
// (an IPv6 host without brackets), Service.Meta its metadata with
// "version" set to its version when it has one, Service.Weights.Passing its
// weight, Service.Weights.Warning 1, Service.Namespace its namespace.
struct FilterSubject {
  const Instance& instance;
  std::string_view node;          // Node.Node
  std::string_view node_address;  // Node.Address
  std::string_view datacenter;    // Node.Datacenter
  std::string_view node_id;       // Node.ID
  // The entry's checks in order, each as {CheckID, Status}, the status one
  // of "passing", "warning" and "critical".
  std::vector<std::pair<std::string, std::string>> checks;
};

namespace filter_internal {
struct Node;
}  // namespace filter_internal

class Filter {
 public:
  // The filter `expression` spells, or InvalidArgument saying why it is not
  // one this registry can run.
  static absl::StatusOr<Filter> Parse(std::string_view expression);

  // True when the entry passes the filter.
  bool Matches(const FilterSubject& subject) const;

 private:
  explicit Filter(std::shared_ptr<const filter_internal::Node> root) : root_(std::move(root)) {}

  // The parsed expression; null for an empty one, which matches everything.
  std::shared_ptr<const filter_internal::Node> root_;
};

}  // namespace muster::consul
