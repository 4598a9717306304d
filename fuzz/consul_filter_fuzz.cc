// Consul's ?filter= expressions (server/consul/consul_filter.h): raw bytes
// as the expression, then the parsed filter asked of fixed health entries,
// one with every field set (a 512-byte metadata value among them, the most
// a registration may hold) and one with nothing set.
//
// Properties, beyond not crashing under ASan and UBSan nor running past
// libFuzzer's timeout (regular expressions included):
// - a refused expression is InvalidArgument with a UTF-8 message when the
//   expression was UTF-8, and a JSON error body;
// - "not (E)" parses whenever E does, short of the length and depth
//   limits, and matches exactly the entries E does not.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.h"
#include "server/consul/consul_filter.h"

namespace muster::fuzz {
namespace {

using consul::Filter;
using consul::FilterSubject;

Instance FullInstance() {
  Instance in;
  in.ns = "default";
  in.service = "web";
  in.id = "web-1";
  in.version = "1.2.0";
  in.address = "[fe80::1]:8080";
  in.weight = 10;
  in.tags = {"primary", "eu-west", "traefik.enable=true"};
  std::string big;
  for (size_t i = 0; big.size() < 512; ++i) big += "ab-c.1\xc3\xa9 "[i % 9];
  in.metadata = {{"env", "prod"}, {"a.b", "dotted"}, {"blank", ""}, {"big", big.substr(0, 512)}};
  return in;
}

// The entries every parsed filter is asked of.
struct Subjects {
  Instance full = FullInstance();
  Instance bare;
  std::vector<FilterSubject> entries = {
      FilterSubject{.instance = full,
                    .node = "node1",
                    .node_address = "192.168.0.1",
                    .datacenter = "dc1",
                    .node_id = "2b6c2a5e-0000-4000-8000-000000000001",
                    .checks = {{"serfHealth", "passing"},
                               {"service:web-1", "critical"},
                               {"service:web-1:2", "warning"}}},
      FilterSubject{.instance = bare,
                    .node = "",
                    .node_address = "",
                    .datacenter = "",
                    .node_id = "",
                    .checks = {}},
  };
};

const Subjects& TheSubjects() {
  static const Subjects* subjects = new Subjects();
  return *subjects;
}

bool IsBlank(std::string_view text) {
  return text.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

void Run(std::string_view expression) {
  const absl::StatusOr<Filter> filter = Filter::Parse(expression);
  if (!filter.ok()) {
    CheckError(filter.status(), absl::StatusCode::kInvalidArgument, IsUtf8(expression),
               expression);
    return;
  }
  std::vector<bool> matched;
  for (const FilterSubject& entry : TheSubjects().entries) {
    matched.push_back(filter->Matches(entry));
  }
  if (IsBlank(expression)) {
    FUZZ_CHECK(matched == std::vector<bool>(matched.size(), true),
               StrCat("a blank filter refused an entry: ", Escaped(expression)));
    return;
  }
  const std::string negated = StrCat("not (", expression, ")");
  const absl::StatusOr<Filter> negation = Filter::Parse(negated);
  if (!negation.ok()) {
    const std::string_view message = MessageOf(negation.status());
    FUZZ_CHECK(message.find("longer than") != std::string_view::npos ||
                   message.find("nests more than") != std::string_view::npos,
               StrCat("\"not (E)\" refused for a parsed E: ", Escaped(expression), ": ",
                      Escaped(message)));
    return;
  }
  for (size_t i = 0; i < matched.size(); ++i) {
    FUZZ_CHECK(negation->Matches(TheSubjects().entries[i]) == !matched[i],
               StrCat("\"not (E)\" agrees with E on entry ", i, ": ", Escaped(expression)));
  }
}

}  // namespace
}  // namespace muster::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  muster::fuzz::Run(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
