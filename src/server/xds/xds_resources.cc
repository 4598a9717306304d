#include "server/xds/xds_resources.h"

#include <arpa/inet.h>

#include <array>
#include <cstdint>
#include <map>
#include <utility>

#include "core/strings.h"
#include "core/utf8.h"
#include "core/validation.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/core/v3/config_source.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/extensions/filters/http/router/v3/router.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"

namespace muster::xds {

namespace {

namespace core = envoy::config::core::v3;
namespace endpoint = envoy::config::endpoint::v3;
namespace route = envoy::config::route::v3;
namespace hcm = envoy::extensions::filters::network::http_connection_manager::v3;

struct TypeInfo {
  ResourceType type;
  std::string_view url;
  std::string_view short_name;
};
constexpr std::array<TypeInfo, kResourceTypes> kTypes = {{
    {ResourceType::kListener, "type.googleapis.com/envoy.config.listener.v3.Listener", "LDS"},
    {ResourceType::kRoute, "type.googleapis.com/envoy.config.route.v3.RouteConfiguration", "RDS"},
    {ResourceType::kCluster, "type.googleapis.com/envoy.config.cluster.v3.Cluster", "CDS"},
    {ResourceType::kEndpoints, "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
     "EDS"},
}};

// Every call of the target goes to its cluster, of the same name.
route::RouteConfiguration RouteTo(std::string_view name) {
  route::RouteConfiguration config;
  config.set_name(std::string(name));
  route::VirtualHost* host = config.add_virtual_hosts();
  host->set_name(std::string(name));
  host->add_domains()->assign(1, '*');
  route::Route* r = host->add_routes();
  r->mutable_match()->mutable_prefix();  // "": every path
  r->mutable_route()->set_cluster(std::string(name));
  return config;
}

// The host as an IP address gRPC accepts, or nullopt for a host name.
bool IsIpLiteral(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

std::string_view TypeUrl(ResourceType type) { return kTypes[static_cast<size_t>(type)].url; }

std::string_view ShortName(ResourceType type) {
  return kTypes[static_cast<size_t>(type)].short_name;
}

std::optional<ResourceType> TypeOfUrl(std::string_view type_url) {
  for (const TypeInfo& info : kTypes) {
    if (info.url == type_url) return info.type;
  }
  return std::nullopt;
}

absl::StatusOr<Target> ParseTarget(std::string_view name, const Limits& limits) {
  std::vector<std::string_view> parts;
  for (std::string_view rest = name;;) {
    const size_t slash = rest.find('/');
    if (slash == std::string_view::npos) {
      parts.push_back(rest);
      break;
    }
    parts.push_back(rest.substr(0, slash));
    rest.remove_prefix(slash + 1);
  }
  if (parts.size() > 3) {
    return absl::InvalidArgumentError(
        StrCat("xDS resource name ", QuotedPrefix(name),
               " has more than three parts: expected SERVICE, NAMESPACE/SERVICE or "
               "NAMESPACE/SERVICE/VERSION"));
  }
  Target target;
  target.ns = parts.size() == 1 ? std::string(kDefaultNamespace) : std::string(parts[0]);
  target.service = std::string(parts.size() == 1 ? parts[0] : parts[1]);
  if (parts.size() == 3) target.version = std::string(parts[2]);
  auto prefixed = [&](absl::Status s) {
    return absl::InvalidArgumentError(StrCat("xDS resource name ", QuotedPrefix(name), ": ", s.message()));
  };
  if (auto s = ValidateName("namespace", target.ns, limits); !s.ok()) return prefixed(s);
  if (auto s = ValidateName("service", target.service, limits); !s.ok()) return prefixed(s);
  if (parts.size() == 3) {
    if (auto s = ValidateName("version", target.version, limits); !s.ok()) return prefixed(s);
  }
  return target;
}

google::protobuf::Any ListenerResource(std::string_view name) {
  hcm::HttpConnectionManager manager;
  *manager.mutable_route_config() = RouteTo(name);
  hcm::HttpFilter* router = manager.add_http_filters();
  router->set_name("envoy.filters.http.router");
  router->mutable_typed_config()->PackFrom(envoy::extensions::filters::http::router::v3::Router());
  envoy::config::listener::v3::Listener listener;
  listener.set_name(std::string(name));
  listener.mutable_api_listener()->mutable_api_listener()->PackFrom(manager);
  google::protobuf::Any any;
  any.PackFrom(listener);
  return any;
}

google::protobuf::Any RouteResource(std::string_view name) {
  google::protobuf::Any any;
  any.PackFrom(RouteTo(name));
  return any;
}

google::protobuf::Any ClusterResource(std::string_view name) {
  envoy::config::cluster::v3::Cluster cluster;
  cluster.set_name(std::string(name));
  cluster.set_type(envoy::config::cluster::v3::Cluster::EDS);
  auto* eds = cluster.mutable_eds_cluster_config();
  eds->mutable_eds_config()->mutable_ads();
  eds->mutable_eds_config()->set_resource_api_version(core::V3);
  eds->set_service_name(std::string(name));
  cluster.set_lb_policy(envoy::config::cluster::v3::Cluster::ROUND_ROBIN);
  cluster.mutable_connect_timeout()->set_seconds(5);
  google::protobuf::Any any;
  any.PackFrom(cluster);
  return any;
}

EndpointsBuilt EndpointsResource(std::string_view name,
                                 const std::vector<std::shared_ptr<const Instance>>& instances,
                                 std::string_view zone_key) {
  EndpointsBuilt out;
  endpoint::ClusterLoadAssignment assignment;
  assignment.set_cluster_name(std::string(name));
  // By address: the index of its locality in the assignment.
  std::map<std::pair<std::string, uint16_t>, int> seen;
  for (const auto& instance : instances) {
    absl::StatusOr<std::pair<std::string, uint16_t>> hp =
        SplitHostPort(instance->address, AddressUse::kDial);
    if (!hp.ok() || !IsIpLiteral(hp->first)) {
      ++out.skipped_hostnames;
      continue;
    }
    if (auto it = seen.find(*hp); it != seen.end()) {
      endpoint::LocalityLbEndpoints* same = assignment.mutable_endpoints(it->second);
      const uint32_t sum = same->load_balancing_weight().value() + instance->weight;
      same->mutable_load_balancing_weight()->set_value(sum);
      same->mutable_lb_endpoints(0)->mutable_load_balancing_weight()->set_value(sum);
      continue;
    }
    seen.emplace(*hp, assignment.endpoints_size());
    endpoint::LocalityLbEndpoints* locality = assignment.add_endpoints();
    if (auto zone = instance->metadata.find(std::string(zone_key));
        !zone_key.empty() && zone != instance->metadata.end()) {
      locality->mutable_locality()->set_zone(zone->second);
    }
    locality->mutable_locality()->set_sub_zone(instance->id);
    locality->mutable_load_balancing_weight()->set_value(instance->weight);
    locality->set_priority(0);
    endpoint::LbEndpoint* lb = locality->add_lb_endpoints();
    auto* socket = lb->mutable_endpoint()->mutable_address()->mutable_socket_address();
    socket->set_address(hp->first);
    socket->set_port_value(hp->second);
    // Warning is served as healthy, as the native API's ?healthy=true does:
    // gRPC 1.51 drops DEGRADED endpoints.
    lb->set_health_status(core::HEALTHY);
    lb->mutable_load_balancing_weight()->set_value(instance->weight);
    ++out.endpoints;
  }
  out.resource.PackFrom(assignment);
  return out;
}

}  // namespace muster::xds
