// What musterd's xDS server serves, built from the catalog: the resources a
// gRPC client dialing xds:///TARGET asks for, one of each type per target, all
// named TARGET (docs/grpc.md):
//
//   Listener               an api_listener whose HttpConnectionManager routes
//                          every call to the cluster TARGET (inline route,
//                          router filter)
//   RouteConfiguration     the same route, for a client that asks by RDS
//   Cluster                EDS over ADS, round robin
//   ClusterLoadAssignment  the healthy, enabled instances of the target:
//                          one locality per instance, weighted by the
//                          instance's weight
//
// TARGET is SERVICE (namespace "default", every version), NAMESPACE/SERVICE,
// or NAMESPACE/SERVICE/VERSION (only that version). A locality per instance
// is how an instance's weight reaches gRPC: gRPC 1.51's round_robin ignores
// endpoint weights, while its weighted_target splits calls over localities by
// their weights. The locality's zone is the instance's metadata under
// `zone_key`; its sub_zone is the instance id.
//
// Pure functions of their arguments; thread-safe.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/limits.h"
#include "google/protobuf/any.pb.h"
#include "muster/instance.h"

namespace muster::xds {

enum class ResourceType { kListener, kRoute, kCluster, kEndpoints };
inline constexpr size_t kResourceTypes = 4;

// The type URL of each type, as in DiscoveryRequest.type_url and Any.
std::string_view TypeUrl(ResourceType type);
// Nullopt for a type this server does not serve.
std::optional<ResourceType> TypeOfUrl(std::string_view type_url);
// "LDS", "RDS", "CDS", "EDS", for logs.
std::string_view ShortName(ResourceType type);

struct Target {
  std::string ns;
  std::string service;
  std::string version;  // empty: every version
};

// The target a resource name stands for; InvalidArgument naming what is wrong
// (a part that is not a Muster name, too many parts).
absl::StatusOr<Target> ParseTarget(std::string_view name, const Limits& limits);

google::protobuf::Any ListenerResource(std::string_view name);
google::protobuf::Any RouteResource(std::string_view name);
google::protobuf::Any ClusterResource(std::string_view name);

struct EndpointsBuilt {
  google::protobuf::Any resource;
  size_t endpoints = 0;
  // Instances left out because their host is a name, not an IP address
  // (gRPC's xDS client refuses a whole assignment with one such endpoint).
  size_t skipped_hostnames = 0;
};
// `instances` are those to serve: enabled and not critical, of the target's
// version (CatalogView::List with healthy_only does that). Two instances
// with one address become one endpoint carrying both weights.
EndpointsBuilt EndpointsResource(std::string_view name,
                                 const std::vector<std::shared_ptr<const Instance>>& instances,
                                 std::string_view zone_key);

}  // namespace muster::xds
