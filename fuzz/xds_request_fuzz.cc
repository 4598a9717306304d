// What musterd's xDS server does with the bytes of a DiscoveryRequest
// (server/xds/xds_resources.cc): the bytes decoded as protobuf, as gRPC
// decodes them, then the type URL looked up, every resource name read as a
// target, and the resources of each valid one built, the endpoints from
// instances whose addresses are the request's version_info, node id and
// names (bytes a client chooses).
//
// Properties, beyond not crashing under ASan and UBSan:
// - a type URL is served exactly when it is one of the four, and maps back;
// - a refused name is InvalidArgument with a UTF-8 message naming it;
// - an accepted name has one to three parts, each a valid Muster name, and
//   names the same target when rebuilt from its parts;
// - the listener, route and cluster of an accepted name carry that name
//   and route to it; its assignment is named after it, has one endpoint per
//   distinct IP address given, whose weights sum to the instances' weights,
//   and counts as skipped exactly the instances whose host is not an IP.
#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/validation.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "fuzz_support.h"
#include "google/protobuf/stubs/logging.h"
#include "server/xds/xds_resources.h"

namespace muster::fuzz {
namespace {

using xds::ResourceType;

bool IsIp(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

void CheckTarget(const std::string& name, const std::vector<std::string>& addresses) {
  const Limits limits;
  absl::StatusOr<xds::Target> target = xds::ParseTarget(name, limits);
  if (!target.ok()) {
    FUZZ_CHECK(target.status().code() == absl::StatusCode::kInvalidArgument, name);
    FUZZ_CHECK(IsUtf8(MessageOf(target.status())), name);
    FUZZ_CHECK(target.status().message().find("xDS resource name") != absl::string_view::npos,
               std::string(target.status().message()));
    return;
  }
  FUZZ_CHECK(ValidateName("namespace", target->ns, limits).ok(), name);
  FUZZ_CHECK(ValidateName("service", target->service, limits).ok(), name);
  FUZZ_CHECK(target->version.empty() || ValidateName("version", target->version, limits).ok(), name);
  std::string rebuilt = target->service;
  if (name.find('/') != std::string::npos) rebuilt = StrCat(target->ns, "/", target->service);
  if (!target->version.empty()) rebuilt = StrCat(rebuilt, "/", target->version);
  FUZZ_CHECK(rebuilt == name, StrCat(rebuilt, " != ", name));

  envoy::config::listener::v3::Listener listener;
  FUZZ_CHECK(xds::ListenerResource(name).UnpackTo(&listener), name);
  FUZZ_CHECK(listener.name() == name, name);
  envoy::config::cluster::v3::Cluster cluster;
  FUZZ_CHECK(xds::ClusterResource(name).UnpackTo(&cluster), name);
  FUZZ_CHECK(cluster.eds_cluster_config().service_name() == name, name);

  std::vector<std::shared_ptr<const Instance>> instances;
  std::set<std::pair<std::string, uint16_t>> ips;
  size_t hostnames = 0;
  uint64_t weights = 0;
  for (size_t i = 0; i < addresses.size(); ++i) {
    auto in = std::make_shared<Instance>();
    in->id = StrCat("i", i);
    in->address = addresses[i];
    in->weight = static_cast<uint32_t>(1 + i * 97 % 10000);
    auto hp = SplitHostPort(in->address, AddressUse::kDial);
    if (hp.ok() && IsIp(hp->first)) {
      ips.insert(*hp);
      weights += in->weight;
    } else {
      ++hostnames;
    }
    instances.push_back(std::move(in));
  }
  xds::EndpointsBuilt built = xds::EndpointsResource(name, instances, "zone");
  envoy::config::endpoint::v3::ClusterLoadAssignment cla;
  FUZZ_CHECK(built.resource.UnpackTo(&cla), name);
  FUZZ_CHECK(cla.cluster_name() == name, name);
  FUZZ_CHECK(built.skipped_hostnames == hostnames, name);
  FUZZ_CHECK(static_cast<size_t>(cla.endpoints_size()) == ips.size(), name);
  uint64_t sum = 0;
  for (const auto& locality : cla.endpoints()) {
    FUZZ_CHECK(locality.lb_endpoints_size() == 1, name);
    FUZZ_CHECK(locality.load_balancing_weight().value() > 0, name);
    sum += locality.load_balancing_weight().value();
  }
  FUZZ_CHECK(sum == weights, StrCat(sum, " != ", weights));
}

}  // namespace
}  // namespace muster::fuzz

// protobuf logs every string field that is not UTF-8 before it refuses the
// message; the refusal is what matters here.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace muster;
  envoy::service::discovery::v3::DiscoveryRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  const std::optional<xds::ResourceType> type = xds::TypeOfUrl(request.type_url());
  if (type) FUZZ_CHECK(xds::TypeUrl(*type) == request.type_url(), request.type_url());
  std::vector<std::string> addresses = {request.version_info(), request.node().id(),
                                        request.response_nonce()};
  for (const std::string& name : request.resource_names()) addresses.push_back(name);
  for (const std::string& name : request.resource_names()) fuzz::CheckTarget(name, addresses);
  return 0;
}
