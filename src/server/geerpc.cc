// The GeeRPC registry protocol: GET answers the alive servers in a header,
// POST registers or renews the server named in a header. Servers appear in the
// native API as instances of one service in the default namespace.
#include <algorithm>

#include "core/strings.h"
#include "absl/strings/str_join.h"
#include "core/validation.h"
#include "server/api_handler.h"

namespace muster {
namespace {

constexpr std::string_view kAddrKey = "geerpc_addr";

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

// "[protocol@]host:port" -> host:port, or an error.
absl::StatusOr<std::string> HostPortOf(std::string_view addr, const Limits& limits) {
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

}  // namespace

awaitable<Response> ApiHandler::GeeRpc(const Request& req) {
  const std::string ns(kDefaultNamespace);
  const std::string& service = config_.geerpc_service;
  if (req.method() != http::verb::post) {  // GET or HEAD
    std::vector<std::string> alive;
    ListFilter listed;
    listed.healthy_only = true;
    for (const auto& in : catalog_.List(ns, service, listed).instances) {
      auto it = in->metadata.find(std::string(kAddrKey));
      alive.push_back(it != in->metadata.end() ? it->second : in->address);
    }
    std::sort(alive.begin(), alive.end());
    Response res{http::status::ok, 11};
    res.set(StrCat(config_.geerpc_header_prefix, "Servers"), absl::StrJoin(alive, ","));
    co_return res;
  }

  std::string header = StrCat(config_.geerpc_header_prefix, "Server");
  auto field = req.find(header);
  if (field == req.end() || field->value().empty()) {
    co_return ErrorResponse(http::status::bad_request, "invalid_argument",
                            StrCat("missing header ", header));
  }
  std::string addr(field->value());
  auto host_port = HostPortOf(addr, config_.limits);
  if (!host_port.ok()) co_return ErrorResponse(host_port.status());

  Instance in;
  in.ns = ns;
  in.service = service;
  in.id = IdFromAddress(addr);
  in.address = *std::move(host_port);
  in.metadata.emplace(kAddrKey, addr);
  in.ttl_seconds = static_cast<uint32_t>(
      std::chrono::duration_cast<std::chrono::seconds>(config_.geerpc_timeout).count());
  if (auto s = ValidateInstance(in, config_.limits); !s.ok()) co_return ErrorResponse(s);

  // Renewal is the common case and costs no disk write.
  absl::StatusOr<uint32_t> renewed = absl::UnknownError("");
  if (catalog_.clustered()) {
    renewed = co_await AwaitCallback<absl::StatusOr<uint32_t>>(
        [&](auto done) { catalog_.Heartbeat(KeyOf(in), std::move(done)); });
  } else {
    renewed = catalog_.Heartbeat(KeyOf(in));
  }
  if (renewed.ok()) co_return Response{http::status::ok, 11};
  auto result = co_await AwaitCallback<absl::StatusOr<Catalog::WriteResult>>(
      [&](auto done) { catalog_.Register(std::move(in), std::move(done)); });
  if (!result.ok()) co_return ErrorResponse(result.status());
  co_return Response{http::status::ok, 11};
}

}  // namespace muster
