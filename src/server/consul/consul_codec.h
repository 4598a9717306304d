// Consul's HTTP API shapes, apart from HTTP and the catalog: what a Consul
// service definition registers as a Muster instance, and how an instance and
// its checks look in Consul's JSON (agent, catalog and health endpoints).
// consul_api.cc serves them; fuzz/ feeds the parsers arbitrary bytes.
//
// The mapping (docs/consul.md): service ID <-> instance id, Name <-> service,
// Address + Port <-> address (no Address: the agent's), Meta <-> metadata
// (Meta "version" <-> the instance's version), Tags <-> tags,
// Weights.Passing <-> weight, a TTL check <-> a reported ttl check, HTTP /
// TCP / GRPC / Args checks <-> http / tcp / grpc / script checks, check
// states <-> health, maintenance <-> status disabled.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "absl/status/statusor.h"
#include "core/limits.h"
#include "muster/instance.h"

namespace muster::consul {

// The node that answers, as Consul's agent and catalog name it. Every
// instance is shown on it.
struct Agent {
  std::string datacenter = "dc1";
  std::string node;     // the node name (musterd --node-name)
  std::string node_id;  // a UUID, stable for one node name (NodeIdFor)
  std::string address;  // the node's address, a host without port: the
                        // Address of a service that gives none
};

// A UUID-shaped id (8-4-4-4-12 lower-case hex) derived from `node`, the same
// for the same name on every run.
std::string NodeIdFor(std::string_view node);

// The check id a service's checks get when the definition gives none:
// "service:{id}" for a service with one check, "service:{id}:{n}" (n from 1,
// in the order Check then Checks) for one with more. Consul's own rule.
// `index` is the check's position counted from 0 (n is index + 1), `count`
// how many checks the service has.
std::string DefaultCheckId(std::string_view service_id, size_t index, size_t count);

// The check id of the maintenance check of service `service_id`
// ("_service_maintenance:{id}"), shown while the instance is disabled.
std::string MaintenanceCheckId(std::string_view service_id);

// The instance that PUT /v1/agent/service/register with `body` registers in
// namespace `ns`. Consul's conventions: field names match case-insensitively
// and with or without '_' ("Name", "name", "deregister_critical_service_after"),
// unknown fields are ignored, durations are Go strings ("10s", "1m30s",
// "500ms") or integers in nanoseconds. The instance gets no lease
// (ttl_seconds 0): its checks, or nothing, keep it. Validated against
// `limits`. InvalidArgument, with a message in Consul's words, for what
// Consul refuses and for what Muster cannot hold (docs/consul.md lists
// which): a missing Name, a Port outside 1..65535 or missing, an ID or Name
// that is not a Muster name, a check with no type, a GRPCUseTLS check, ...
absl::StatusOr<Instance> ParseServiceDefinition(std::string_view body, std::string_view ns,
                                                const Agent& agent, const Limits& limits);

// PUT /v1/catalog/register: {Node, Address, Service: {definition}, Check,
// Checks}. The service becomes an instance as ParseServiceDefinition makes
// it, with the registration's Address as the default service address.
// Checks without a ServiceID are node checks: refused. A body without a
// Service is refused too (this registry keeps services, not nodes).
absl::StatusOr<Instance> ParseCatalogRegistration(std::string_view body, std::string_view ns,
                                                  const Agent& agent, const Limits& limits);

// PUT /v1/catalog/deregister: {Node, ServiceID, CheckID}.
struct CatalogDeregistration {
  std::string node;
  std::string service_id;  // "": none given
  std::string check_id;    // "": none given
};
absl::StatusOr<CatalogDeregistration> ParseCatalogDeregistration(std::string_view body,
                                                                 const Limits& limits);

// Consul's check status words ("passing", "warning", "critical", and "any"
// where a filter allows it) are Muster's health words; this reads one.
// "any" is no health: it reads as nullopt, as any other word does, so a
// filter that allows it tests for it first.
std::optional<Health> ParseCheckStatus(std::string_view text);

// --- answers ---

// GET /v1/agent/services values and GET /v1/agent/service/{id}: ID,
// Service, Tags, Meta, Port, Address, Weights {Passing, Warning},
// EnableTagOverride, Datacenter, Namespace (only outside "default"),
// CreateIndex, ModifyIndex, ContentHash.
boost::json::object AgentServiceJson(const Instance& instance, const Agent& agent);

// One element of GET /v1/catalog/service/{name}: ID (node id), Node,
// Address (node), Datacenter, TaggedAddresses, NodeMeta, ServiceID,
// ServiceName, ServiceTags, ServiceAddress, ServicePort, ServiceMeta,
// ServiceWeights, ServiceEnableTagOverride, CreateIndex, ModifyIndex.
boost::json::object CatalogServiceJson(const Instance& instance, const Agent& agent);

// The node as GET /v1/catalog/nodes lists it and as "Node" inside a health
// entry: ID, Node, Address, Datacenter, TaggedAddresses, Meta, CreateIndex,
// ModifyIndex.
boost::json::object NodeJson(const Agent& agent);

// Every check of the instance as Consul shows it (HealthCheck objects:
// Node, CheckID, Name, Status, Notes, Output, ServiceID, ServiceName,
// ServiceTags, Type, Interval, Timeout, Definition, CreateIndex,
// ModifyIndex): its Muster checks (the lease check as a passing "ttl"
// check), and the maintenance check (critical) while it is disabled.
std::vector<boost::json::object> ServiceChecksJson(const Instance& instance, const Agent& agent);

// The node's own check, always passing: "serfHealth", as Consul's agents
// add to every node. Part of every health entry.
boost::json::object NodeCheckJson(const Agent& agent);

// The health status Consul derives for an instance: the worst of its checks'
// (critical while disabled), as the "passing" filter reads it.
Health ConsulHealth(const Instance& instance);

// One element of GET /v1/health/service/{name}: {Node, Service (AgentService
// shape without ContentHash), Checks: [node check, service checks]}.
boost::json::object ServiceEntryJson(const Instance& instance, const Agent& agent);

}  // namespace muster::consul
