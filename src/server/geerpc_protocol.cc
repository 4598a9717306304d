#include "server/geerpc_protocol.h"

#include <algorithm>

#include "absl/strings/str_join.h"
#include "core/validation.h"

namespace muster {
namespace {

// An id from an address: [A-Za-z0-9.-] kept, every other byte as _XX, so that
// distinct addresses never share an id.
std::string IdFromAddress(std::string_view addr) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string id;
  for (unsigned char c : addr) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
        c == '-') {
      id.push_back(static_cast<char>(c));
    } else {
      id.push_back('_');
      id.push_back(kHex[c >> 4]);
      id.push_back(kHex[c & 15]);
    }
  }
  return id;
}

}  // namespace

absl::StatusOr<std::string> GeeRpcHostPort(std::string_view addr, const Limits& limits) {
  size_t at = addr.find('@');
  if (at != std::string_view::npos) {
    std::string_view protocol = addr.substr(0, at);
    bool ok = !protocol.empty() && protocol.size() <= 16 &&
              std::all_of(protocol.begin(), protocol.end(), [](char c) {
                return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '.' ||
                       c == '-';
              });
    if (!ok) return absl::InvalidArgumentError("server address has a bad protocol before '@'");
    addr = addr.substr(at + 1);
  }
  if (auto s = ValidateAddress(addr, limits); !s.ok()) return s;
  return std::string(addr);
}

absl::StatusOr<Instance> GeeRpcInstance(std::string_view server, std::string_view service,
                                        std::chrono::milliseconds ttl, const Limits& limits) {
  auto host_port = GeeRpcHostPort(server, limits);
  if (!host_port.ok()) return host_port.status();
  Instance in;
  in.ns = std::string(kDefaultNamespace);
  in.service = std::string(service);
  in.id = IdFromAddress(server);
  in.address = *std::move(host_port);
  in.metadata.emplace(kGeeRpcAddrKey, server);
  in.ttl_seconds =
      static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::seconds>(ttl).count());
  if (auto s = ValidateInstance(in, limits); !s.ok()) return s;
  return in;
}

std::string GeeRpcServerList(const std::vector<std::shared_ptr<const Instance>>& instances,
                             const Limits& limits) {
  std::vector<std::string> alive;
  alive.reserve(instances.size());
  for (const auto& in : instances) {
    // An instance registered through the native API may hold any string
    // here: a comma would split it into two servers, a CR or LF end the
    // header. Only an address that GeeRPC could have announced is answered.
    auto it = in->metadata.find(std::string(kGeeRpcAddrKey));
    const bool announced = it != in->metadata.end() && GeeRpcHostPort(it->second, limits).ok();
    alive.push_back(announced ? it->second : in->address);
  }
  std::sort(alive.begin(), alive.end());
  return absl::StrJoin(alive, ",");
}

}  // namespace muster
