// The Consul codec's answers (consul_codec.h): how an instance, its checks
// and the node look in Consul's JSON. Address and Port are split from the
// instance's address (an IPv6 host without brackets), Meta carries the
// version again, Weights are {Passing: weight, Warning: 1}, the indexes are
// the instance's revisions; the node has no revisions of its own (0).
#include <charconv>
#include <string>
#include <utility>

#include "core/duration.h"
#include "core/strings.h"
#include "core/validation.h"
#include "server/consul/consul_codec.h"

namespace muster::consul {
namespace json = boost::json;

namespace {

// 64-bit FNV-1a: stable across runs and builds, unlike std::hash.
uint64_t Fnv1a(std::string_view data, uint64_t basis = 14695981039346656037ull) {
  uint64_t h = basis;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// `value` as `digits` lower-case hex digits (its low bits).
std::string Hex(uint64_t value, int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(static_cast<size_t>(digits), '0');
  for (int i = digits - 1; i >= 0; --i) {
    out[static_cast<size_t>(i)] = kHex[value & 15];
    value >>= 4;
  }
  return out;
}

// Host and port of an instance's address, the host without brackets. An
// address SplitHostPort does not take (over its default length, which a
// musterd with raised limits may hold) is split at its last ':'.
std::pair<std::string, uint16_t> HostPort(std::string_view address) {
  absl::StatusOr<std::pair<std::string, uint16_t>> split =
      SplitHostPort(address, AddressUse::kDial);
  if (split.ok()) return *std::move(split);
  const size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) return {std::string(address), 0};
  std::string_view host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  uint16_t port = 0;
  std::from_chars(address.data() + colon + 1, address.data() + address.size(), port);
  return {std::string(host), port};
}

json::object MetaJson(const Instance& in) {
  json::object meta;
  for (const auto& [k, v] : in.metadata) meta[k] = v;
  if (!in.version.empty()) meta["version"] = in.version;
  return meta;
}

json::object WeightsJson(const Instance& in) {
  json::object weights;
  weights["Passing"] = in.weight;
  weights["Warning"] = 1;
  return weights;
}

json::object TaggedAddressesJson(const Agent& agent) {
  json::object tagged;
  tagged["lan"] = agent.address;
  tagged["wan"] = agent.address;
  return tagged;
}

json::object NodeMetaJson() {
  json::object meta;
  meta["consul-network-segment"] = "";
  return meta;
}

// A HealthCheck object with the fields every check shares.
json::object CheckJson(const Agent& agent, std::string_view check_id, std::string_view name,
                       Health status, std::string_view notes, std::string_view output,
                       std::string_view type) {
  json::object o;
  o["Node"] = agent.node;
  o["CheckID"] = check_id;
  o["Name"] = name;
  o["Status"] = ToString(status);
  o["Notes"] = notes;
  o["Output"] = output;
  o["ServiceID"] = "";
  o["ServiceName"] = "";
  o["ServiceTags"] = json::array();
  o["Type"] = type;
  o["Interval"] = "";
  o["Timeout"] = "";
  o["Definition"] = json::object();
  o["CreateIndex"] = 0;
  o["ModifyIndex"] = 0;
  return o;
}

void SetService(json::object& check, const Instance& in) {
  check["ServiceID"] = in.id;
  check["ServiceName"] = in.service;
  check["ServiceTags"] = json::array(in.tags.begin(), in.tags.end());
  check["CreateIndex"] = in.create_revision;
  check["ModifyIndex"] = in.modify_revision;
}

// The node's fields that a node and a catalog entry share.
json::object NodeFieldsJson(const Agent& agent) {
  return json::object{{"ID", agent.node_id},
                      {"Node", agent.node},
                      {"Address", agent.address},
                      {"Datacenter", agent.datacenter},
                      {"TaggedAddresses", TaggedAddressesJson(agent)}};
}

}  // namespace

std::string NodeIdFor(std::string_view node) {
  const uint64_t high = Fnv1a(node);
  const uint64_t low = Fnv1a(node, high ^ 0x9e3779b97f4a7c15ull);
  const std::string hex = Hex(high, 16) + Hex(low, 16);
  return StrCat(std::string_view(hex).substr(0, 8), "-", std::string_view(hex).substr(8, 4), "-",
                std::string_view(hex).substr(12, 4), "-", std::string_view(hex).substr(16, 4), "-",
                std::string_view(hex).substr(20, 12));
}

std::string MaintenanceCheckId(std::string_view service_id) {
  return StrCat("_service_maintenance:", service_id);
}

json::object AgentServiceJson(const Instance& in, const Agent& agent) {
  const auto [host, port] = HostPort(in.address);
  json::object o;
  o["ID"] = in.id;
  o["Service"] = in.service;
  o["Tags"] = json::array(in.tags.begin(), in.tags.end());
  o["Meta"] = MetaJson(in);
  o["Port"] = port;
  o["Address"] = host;
  o["Weights"] = WeightsJson(in);
  o["EnableTagOverride"] = false;
  o["Datacenter"] = agent.datacenter;
  if (in.ns != kDefaultNamespace) o["Namespace"] = in.ns;
  // The hash of what the service is, its indexes apart, as Consul's.
  o["ContentHash"] = Hex(Fnv1a(json::serialize(o)), 16);
  o["CreateIndex"] = in.create_revision;
  o["ModifyIndex"] = in.modify_revision;
  return o;
}

json::object CatalogServiceJson(const Instance& in, const Agent& agent) {
  const auto [host, port] = HostPort(in.address);
  json::object o = NodeFieldsJson(agent);
  o["NodeMeta"] = NodeMetaJson();
  o["ServiceID"] = in.id;
  o["ServiceName"] = in.service;
  o["ServiceTags"] = json::array(in.tags.begin(), in.tags.end());
  o["ServiceAddress"] = host;
  o["ServicePort"] = port;
  o["ServiceMeta"] = MetaJson(in);
  o["ServiceWeights"] = WeightsJson(in);
  o["ServiceEnableTagOverride"] = false;
  o["CreateIndex"] = in.create_revision;
  o["ModifyIndex"] = in.modify_revision;
  return o;
}

json::object NodeJson(const Agent& agent) {
  json::object o = NodeFieldsJson(agent);
  o["Meta"] = NodeMetaJson();
  o["CreateIndex"] = 0;
  o["ModifyIndex"] = 0;
  return o;
}

std::vector<json::object> ServiceChecksJson(const Instance& in, const Agent& agent) {
  std::vector<json::object> out;
  out.reserve(in.checks.size() + 1);
  const std::string name = StrCat("Service '", in.service, "' check");
  for (const Check& c : in.checks) {
    json::object o = CheckJson(agent, c.id, name, c.IsLease() ? Health::kPassing : c.status, "",
                               c.output, ToString(c.type));
    SetService(o, in);
    if (c.type != CheckType::kTtl) {
      o["Interval"] = FormatDuration(c.interval);
      o["Timeout"] = FormatDuration(c.timeout);
    }
    out.push_back(std::move(o));
  }
  if (in.status == InstanceStatus::kDisabled) {
    json::object o = CheckJson(agent, MaintenanceCheckId(in.id), "Service Maintenance Mode",
                               Health::kCritical, "Maintenance mode is enabled for this service",
                               "", "maintenance");
    SetService(o, in);
    out.push_back(std::move(o));
  }
  return out;
}

json::object NodeCheckJson(const Agent& agent) {
  return CheckJson(agent, "serfHealth", "Serf Health Status", Health::kPassing, "",
                   "Agent alive and reachable", "");
}

Health ConsulHealth(const Instance& in) {
  if (in.status == InstanceStatus::kDisabled) return Health::kCritical;
  Health worst = Health::kPassing;
  for (const Check& c : in.checks) {
    if (!c.IsLease()) worst = std::max(worst, c.status);
  }
  return worst;
}

json::object ServiceEntryJson(const Instance& in, const Agent& agent) {
  json::object service = AgentServiceJson(in, agent);
  service.erase("ContentHash");
  json::array checks;
  checks.push_back(NodeCheckJson(agent));
  for (json::object& c : ServiceChecksJson(in, agent)) checks.push_back(std::move(c));
  json::object o;
  o["Node"] = NodeJson(agent);
  o["Service"] = std::move(service);
  o["Checks"] = std::move(checks);
  return o;
}

}  // namespace muster::consul
