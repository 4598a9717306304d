// The GeeRPC registry protocol: GET answers the alive servers in a header,
// POST registers or renews the server named in a header. Servers appear in the
// native API as instances of one service in the default namespace.
#include "absl/status/status.h"
#include "core/strings.h"
#include "server/api_handler.h"
#include "server/geerpc_protocol.h"

namespace muster {

awaitable<Response> ApiHandler::GeeRpc(const Request& req) {
  const std::string ns(kDefaultNamespace);
  const std::string& service = config_.geerpc_service;
  if (req.method() != http::verb::post) {  // GET or HEAD
    ListFilter listed;
    listed.healthy_only = true;
    Response res{http::status::ok, 11};
    res.set(StrCat(config_.geerpc_header_prefix, "Servers"),
            GeeRpcServerList(catalog_.List(ns, service, listed).instances, config_.limits));
    co_return res;
  }

  std::string header = StrCat(config_.geerpc_header_prefix, "Server");
  auto field = req.find(header);
  if (field == req.end() || field->value().empty()) {
    co_return ErrorResponse(absl::InvalidArgumentError(StrCat("missing header ", header)));
  }
  auto announced = GeeRpcInstance(field->value(), service, config_.geerpc_timeout, config_.limits);
  if (!announced.ok()) co_return ErrorResponse(announced.status());
  Instance in = *std::move(announced);

  // Renewal is the common case and costs no disk write.
  const InstanceKey key = KeyOf(in);
  absl::StatusOr<uint32_t> renewed = co_await RenewLease(key);
  if (renewed.ok()) co_return Response{http::status::ok, 11};
  auto result = co_await AwaitCallback<absl::StatusOr<Catalog::WriteResult>>(
      [&](auto done) { catalog_.Register(std::move(in), std::move(done)); });
  if (!result.ok()) co_return ErrorResponse(result.status());
  co_return Response{http::status::ok, 11};
}

}  // namespace muster
