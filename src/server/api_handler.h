// Routes requests to the native API (/api/v1), /healthz, the GeeRPC
// registry endpoint and the Consul API (/v1/, consul/consul_api.h), and
// answers them from the catalog.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <variant>

#include "catalog/catalog.h"
#include "server/async_util.h"
#include "server/config.h"
#include "server/connection_table.h"
#include "server/health/health_checker.h"
#include "server/webhooks/webhook_notifier.h"
#include "server/http_types.h"
#include "server/list_cache.h"
#include "server/url.h"
#include "server/watch_stream.h"

namespace muster {

class ConsulApi;
namespace xds {
class XdsServer;
}

// Marks a check report one node forwarded to the leader.
inline constexpr std::string_view kForwardedHeader = "X-Muster-Forwarded";

class ApiHandler {
 public:
  ApiHandler(const ServerConfig& config, Catalog& catalog);
  ~ApiHandler();

  // A watch request that passed validation: Stream() runs it.
  struct WatchStream {
    WatchFilter filter;
    std::optional<uint64_t> from;  // none: from the next change on
  };
  // What Handle made of a request: the response to send, or a watch to
  // stream on the connection until either side ends it.
  using Reply = std::variant<Response, WatchStream>;

  // Answers one request.
  awaitable<Reply> Handle(Request& request);
  // Streams change events to `stream` until the client leaves or the server
  // stops. The caller should hold little else while it runs: a watch can
  // last for hours, and ten thousand of them hold ten thousand of it.
  awaitable<void> Stream(const WatchStream& watch, beast::tcp_stream& stream);

  // --- Shared with the compatibility surfaces (consul/consul_api.h) ---

  // Waits for a change to the instances of ns/service (ns alone when
  // `service` is empty: any change, as the registry revision counts) after
  // `index`, until `deadline` or shutdown. Counted in /healthz.
  awaitable<void> WaitForChange(const std::string& ns, const std::string& service, uint64_t index,
                                asio::steady_timer::time_point deadline);
  // Refuses script checks unless enabled and the request carries the token.
  absl::Status AllowScriptChecks(const Request& req, const Instance& instance) const;

  // Hands a report on the reported check `check_id` of `key` to the health
  // checker; done once the catalog holds it. NotFound for an unknown
  // instance or check, FailedPrecondition for a check that takes no reports,
  // Unavailable when this node cannot take it now.
  // In cluster mode a node that does not keep the checks forwards the
  // report to the leader (`may_forward`: it did not come forwarded itself).
  awaitable<absl::Status> ReportCheck(const InstanceKey& key, const std::string& check_id,
                                      Health status, std::string output, bool may_forward = true);

  // Makes waiting requests (blocking queries, watches) finish now.
  void BeginShutdown();

  // The checker whose live results GET .../checks shows (null: none runs
  // here). Set before serving.
  void SetHealthChecker(HealthChecker* checker) { checker_ = checker; }
  // The webhooks whose delivery counts /healthz shows (null: none are
  // configured). Set before serving.
  void SetWebhookNotifier(const WebhookNotifier* webhooks) { webhooks_ = webhooks; }
  // The xDS server whose counts /healthz shows (null: none). Before serving.
  void SetXdsServer(const xds::XdsServer* xds) { xds_ = xds; }
  // The address the server listens on (the Consul API reports it). Before
  // serving.
  void SetListenAddress(const std::string& address);
  // The server's connections, reported by /healthz. Before serving.
  void SetConnections(const ConnectionTable* connections) { connections_ = connections; }

 private:
  awaitable<Response> Register(const Request& req, const Target& t, const std::string& ns);
  awaitable<Response> Deregister(const Target& t, const std::string& ns);
  awaitable<Response> Heartbeat(const Target& t, const std::string& ns);
  Response Checks(const Target& t, const std::string& ns);
  // PUT .../checks/{check_id}: a report on a reported check.
  awaitable<Response> Report(const Request& req, const Target& t, const std::string& ns);
  // Sends a report to the leader's native API; its answer as a status.
  awaitable<absl::Status> ForwardReport(const std::string& leader, const InstanceKey& key,
                                        const std::string& check_id, Health status,
                                        std::string output);
  awaitable<Response> List(const Target& t, const std::string& ns);
  Response Services(const std::string& ns);
  Response Healthz();
  // Validates a watch request.
  Reply Watch(const Request& req, const Target& t, const std::string& ns);
  awaitable<Response> GeeRpc(const Request& req);
  // Renews the instance's lease: answered at once when the write path has
  // it at hand, else awaited without holding the I/O thread. By reference,
  // to a named key of the caller's: GCC 12 destroys a temporary passed by
  // value to a coroutine twice (a double free seen in cluster mode).
  awaitable<absl::StatusOr<uint32_t>> RenewLease(const InstanceKey& key);

  const ServerConfig& config_;
  Catalog& catalog_;
  HealthChecker* checker_ = nullptr;
  const WebhookNotifier* webhooks_ = nullptr;
  const xds::XdsServer* xds_ = nullptr;
  const ConnectionTable* connections_ = nullptr;
  ListCache lists_;
  WatchStreams streams_;
  std::unique_ptr<ConsulApi> consul_;  // null: --consul-api=false
  std::atomic<bool> stopping_{false};
  // Blocking queries subscribed to the hub and waiting now (/healthz).
  std::atomic<size_t> blocking_queries_{0};
};

}  // namespace muster
