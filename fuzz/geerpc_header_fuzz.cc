// The GeeRPC registry protocol (server/geerpc_protocol.h): the server a POST
// announces in X-Geerpc-Server, and the X-Geerpc-Servers list a GET answers.
//
// The first byte picks what the rest is:
// - even: the value of an X-Geerpc-Server header;
// - odd: the geerpc_addr metadata of up to four instances of the service, as
//   any client may register them through the native API (JSON strings:
//   UTF-8 of at most 512 bytes, control characters included), separated by
//   0x00 bytes.
//
// Properties, beyond not crashing under ASan and UBSan:
// - an announced server becomes a valid instance whose id maps back to the
//   announced value byte for byte (distinct servers never share an id), whose
//   address is the value without its protocol, and which GET lists as the
//   value itself;
// - a refused one is InvalidArgument with a UTF-8 message when it was UTF-8;
// - the GET list is a valid HTTP field value with one entry per instance,
//   each a [protocol@]host:port that a GeeRPC client can dial.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/validation.h"
#include "fuzz_support.h"
#include "server/geerpc_protocol.h"

namespace muster::fuzz {
namespace {

constexpr std::string_view kService = "geerpc";
constexpr std::chrono::minutes kTtl{5};

int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The inverse of the id mapping: _XX back to the byte.
std::optional<std::string> AddressFromId(std::string_view id) {
  std::string out;
  for (size_t i = 0; i < id.size(); ++i) {
    if (id[i] != '_') {
      out.push_back(id[i]);
      continue;
    }
    if (i + 2 >= id.size() || Hex(id[i + 1]) < 0 || Hex(id[i + 2]) < 0) return std::nullopt;
    out.push_back(static_cast<char>(Hex(id[i + 1]) * 16 + Hex(id[i + 2])));
    i += 2;
  }
  return out;
}

// RFC 9110 field-value: visible ASCII, obs-text, and spaces or tabs inside.
bool IsFieldValue(std::string_view v) {
  for (unsigned char c : v) {
    if (c < 0x20 && c != '\t') return false;
    if (c == 0x7f) return false;
  }
  return v.empty() || (v.front() != ' ' && v.front() != '\t' && v.back() != ' ' && v.back() != '\t');
}

void CheckServerList(const std::vector<std::shared_ptr<const Instance>>& instances) {
  const Limits limits;
  const std::string list = GeeRpcServerList(instances, limits);
  FUZZ_CHECK(IsFieldValue(list), StrCat("X-Geerpc-Servers is no header value: ", Escaped(list)));
  std::vector<std::string_view> entries;
  for (size_t pos = 0; !instances.empty();) {
    const size_t comma = list.find(',', pos);
    entries.push_back(std::string_view(list).substr(pos, comma - pos));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  FUZZ_CHECK(entries.size() == instances.size(),
             StrCat(instances.size(), " instances listed as ", entries.size(), " servers: ",
                    Escaped(list)));
  for (std::string_view entry : entries) {
    FUZZ_CHECK(GeeRpcHostPort(entry, limits).ok(),
               StrCat("listed server ", Escaped(entry), " is no address GeeRPC announces"));
  }
}

void Announce(std::string_view value) {
  const Limits limits;
  absl::StatusOr<Instance> in = GeeRpcInstance(value, kService, kTtl, limits);
  if (!in.ok()) {
    CheckError(in.status(), absl::StatusCode::kInvalidArgument, IsUtf8(value), value);
    return;
  }
  FUZZ_CHECK(ValidateInstance(*in, limits).ok(), StrCat("invalid instance for ", Escaped(value)));
  FUZZ_CHECK(in->ns == kDefaultNamespace && in->service == kService && in->ttl_seconds == 300,
             StrCat("wrong names or lease for ", Escaped(value)));
  std::optional<std::string> from_id = AddressFromId(in->id);
  FUZZ_CHECK(from_id && *from_id == value,
             StrCat("id ", in->id, " does not map back to ", Escaped(value)));
  const std::string_view host_port =
      value.find('@') == std::string_view::npos ? value : value.substr(value.find('@') + 1);
  FUZZ_CHECK(in->address == host_port, StrCat("address ", Escaped(in->address), " for ", Escaped(value)));
  FUZZ_CHECK(in->metadata.size() == 1 && in->metadata.at(std::string(kGeeRpcAddrKey)) == value,
             StrCat("metadata for ", Escaped(value)));
  const std::string listed = GeeRpcServerList({std::make_shared<Instance>(*in)}, limits);
  FUZZ_CHECK(listed == value, StrCat(Escaped(value), " listed as ", Escaped(listed)));
  CheckServerList({std::make_shared<Instance>(*in)});
}

void List(std::string_view rest) {
  const Limits limits;
  std::vector<std::shared_ptr<const Instance>> instances;
  size_t pos = 0;
  while (instances.size() < 4 && pos <= rest.size()) {
    const size_t end = std::min(rest.find('\0', pos), rest.size());
    const std::string_view addr = rest.substr(pos, end - pos);
    pos = end + 1;
    Instance in;
    in.service = std::string(kService);
    in.id = StrCat("native-", instances.size());
    in.address = "127.0.0.1:9000";
    in.metadata.emplace(kGeeRpcAddrKey, addr);
    // Only what the native API would have accepted.
    if (!IsUtf8(addr) || !ValidateInstance(in, limits).ok()) return;
    instances.push_back(std::make_shared<Instance>(std::move(in)));
  }
  CheckServerList(instances);
}

}  // namespace
}  // namespace muster::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    muster::fuzz::Announce(rest);
  } else {
    muster::fuzz::List(rest);
  }
  return 0;
}
