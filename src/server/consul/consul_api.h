// The Consul HTTP API under /v1/ (docs/consul.md): Consul's agent, catalog,
// health and status endpoints, answered from the one catalog, so that an
// instance registered through Consul's API is the same instance the native
// API, the SDK and GeeRPC see, and the other way round. It keeps no state of
// its own: what Consul's agent would keep (services, checks, maintenance) is
// the instance, its checks and its status.
//
// Consul's conventions hold here, not the native API's: plain-text error
// bodies, X-Consul-Index / X-Consul-KnownLeader / X-Consul-LastContact on
// reads, blocking queries with ?index= and ?wait=, unknown fields and
// parameters ignored, ?ns= for the namespace.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "server/async_util.h"
#include "server/config.h"
#include "server/consul/consul_codec.h"
#include "server/consul/consul_filter.h"
#include "server/http_types.h"
#include "server/url.h"

namespace muster {

class ApiHandler;

class ConsulApi {
 public:
  // `native` answers what both APIs share (blocking queries, check reports,
  // script-check tokens).
  ConsulApi(const ServerConfig& config, Catalog& catalog, ApiHandler& native);
  // The address musterd listens on (the node's address unless --advertise
  // names another). Before serving.
  void SetListenAddress(std::string listen);

  // Answers a request whose path starts with /v1/ (`t` is its parsed target,
  // `method` GET for a HEAD).
  awaitable<Response> Handle(const Request& req, const Target& t, http::verb method);

 private:
  // The parameters every read shares.
  struct Read {
    std::string ns;
    uint64_t index = 0;  // 0: answer at once
    std::chrono::milliseconds wait{0};
  };

  awaitable<Response> AgentPaths(const Request& req, const Target& t, http::verb method,
                                 const std::string& ns);
  awaitable<Response> CatalogPaths(const Request& req, const Target& t, http::verb method,
                                   const std::string& ns);
  awaitable<Response> HealthPaths(const Target& t, const std::string& ns);
  Response StatusPaths(const Target& t);

  awaitable<Response> RegisterService(const Request& req, const std::string& ns);
  awaitable<Response> DeregisterService(const std::string& ns, const std::string& id);
  awaitable<Response> Maintenance(const Target& t, const std::string& ns, const std::string& id);
  awaitable<Response> UpdateCheck(const Request& req, const Target& t, const std::string& ns,
                                  const std::string& verb, const std::string& check_id);

  // The instance of `ns` with service id `id`, or null. When several
  // services have an instance of that id, the first by service name.
  std::shared_ptr<const Instance> FindService(const std::string& ns, const std::string& id) const;
  // The instance that has the check `check_id`, or null.
  std::shared_ptr<const Instance> FindCheckOwner(const std::string& ns,
                                                 const std::string& check_id) const;

  // ?index= and ?wait= (InvalidArgument with Consul's message when bad).
  absl::StatusOr<Read> ParseRead(const Target& t, const std::string& ns) const;
  // What ?filter= sees of an instance whose health entry is `entry`.
  consul::FilterSubject SubjectOf(const Instance& in, const boost::json::object& entry) const;
  // ?tag= (repeatable: all must be carried).
  absl::StatusOr<ListFilter> TagFilter(const Target& t) const;
  // Waits as a blocking query asks (for `service`, or the whole namespace
  // when empty), then returns the index to answer with.
  awaitable<uint64_t> Block(const Read& read, const std::string& service);
  uint64_t IndexOf(const std::string& ns, const std::string& service) const;
  // A JSON answer with Consul's read headers.
  Response ReadAnswer(const boost::json::value& body, uint64_t index) const;

  const ServerConfig& config_;
  Catalog& catalog_;
  ApiHandler& native_;
  consul::Agent agent_;
  std::string self_;  // this node's address (host:port) for status/leader
};

}  // namespace muster
