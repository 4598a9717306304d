// The xDS protos (server/xds/proto/): Muster's own subset of Envoy's
// data-plane API v3. These tests are the record that the subset is Envoy's on
// the wire: the message names give the Any type URLs a gRPC client checks,
// every field and enum value has the number Envoy's API source gives it (and
// sits in the same oneof), the ADS method is served at the path gRPC calls,
// and a ClusterLoadAssignment survives a trip through bytes.
#include <gtest/gtest.h>

#include <google/protobuf/any.pb.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/core/v3/address.pb.h"
#include "envoy/config/core/v3/base.pb.h"
#include "envoy/config/core/v3/config_source.pb.h"
#include "envoy/config/core/v3/health_check.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/endpoint/v3/endpoint_components.pb.h"
#include "envoy/config/listener/v3/api_listener.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/config/route/v3/route_components.pb.h"
#include "envoy/extensions/filters/http/router/v3/router.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "google/rpc/status.pb.h"

namespace muster::xds {
namespace {

namespace core = ::envoy::config::core::v3;
namespace endpoint = ::envoy::config::endpoint::v3;
namespace cluster = ::envoy::config::cluster::v3;
namespace listener = ::envoy::config::listener::v3;
namespace route = ::envoy::config::route::v3;
namespace hcm = ::envoy::extensions::filters::network::http_connection_manager::v3;
namespace router = ::envoy::extensions::filters::http::router::v3;
namespace discovery = ::envoy::service::discovery::v3;

using ::google::protobuf::Descriptor;
using ::google::protobuf::EnumDescriptor;
using ::google::protobuf::FieldDescriptor;

// The type URLs of the resources and filter configs, as gRPC 1.51's xDS
// client spells them, against our messages packed into an Any.
template <typename M>
std::string TypeUrlOf() {
  google::protobuf::Any any;
  any.PackFrom(M());
  return any.type_url();
}

TEST(XdsProtoTest, TypeUrlsAreTheOnesGrpcChecks) {
  EXPECT_EQ(TypeUrlOf<listener::Listener>(),
            "type.googleapis.com/envoy.config.listener.v3.Listener");
  EXPECT_EQ(TypeUrlOf<route::RouteConfiguration>(),
            "type.googleapis.com/envoy.config.route.v3.RouteConfiguration");
  EXPECT_EQ(TypeUrlOf<cluster::Cluster>(), "type.googleapis.com/envoy.config.cluster.v3.Cluster");
  EXPECT_EQ(TypeUrlOf<endpoint::ClusterLoadAssignment>(),
            "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment");
  EXPECT_EQ(TypeUrlOf<hcm::HttpConnectionManager>(),
            "type.googleapis.com/"
            "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager");
  EXPECT_EQ(TypeUrlOf<router::Router>(),
            "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router");
}

TEST(XdsProtoTest, ProtoFileNamesFollowEnvoysLayout) {
  // A descriptor's file is how another .proto imports it; Envoy's own paths.
  EXPECT_EQ(endpoint::ClusterLoadAssignment::descriptor()->file()->name(),
            "envoy/config/endpoint/v3/endpoint.proto");
  EXPECT_EQ(core::Node::descriptor()->file()->name(), "envoy/config/core/v3/base.proto");
  EXPECT_EQ(google::rpc::Status::descriptor()->file()->name(), "google/rpc/status.proto");
  EXPECT_EQ(discovery::AggregatedDiscoveryService::service_full_name(),
            std::string("envoy.service.discovery.v3.AggregatedDiscoveryService"));
}

// Every field of the subset: message, field, number, and the oneof it
// belongs to ("" for none). Numbers and oneofs verified against Envoy's API
// source (envoyproxy/envoy api/envoy/..., cross-checked with the copy under
// grpc/grpc third_party/envoy-api) and googleapis' google/rpc/status.proto.
// The list is complete: a field added to a .proto without an entry here fails
// CoversEveryField.
struct FieldNumber {
  const Descriptor* message;
  const char* field;
  int number;
  const char* oneof;
};

std::vector<FieldNumber> EnvoyFieldNumbers() {
  return {
      {google::rpc::Status::descriptor(), "code", 1, ""},
      {google::rpc::Status::descriptor(), "message", 2, ""},
      {google::rpc::Status::descriptor(), "details", 3, ""},

      {core::Locality::descriptor(), "region", 1, ""},
      {core::Locality::descriptor(), "zone", 2, ""},
      {core::Locality::descriptor(), "sub_zone", 3, ""},
      {core::Node::descriptor(), "id", 1, ""},
      {core::Node::descriptor(), "cluster", 2, ""},
      {core::Node::descriptor(), "metadata", 3, ""},
      {core::Node::descriptor(), "locality", 4, ""},
      {core::Node::descriptor(), "user_agent_name", 6, ""},
      {core::Node::descriptor(), "user_agent_version", 7, "user_agent_version_type"},
      {core::Node::descriptor(), "client_features", 10, ""},
      {core::Metadata::descriptor(), "filter_metadata", 1, ""},
      {core::ControlPlane::descriptor(), "identifier", 1, ""},
      {core::SocketAddress::descriptor(), "protocol", 1, ""},
      {core::SocketAddress::descriptor(), "address", 2, ""},
      {core::SocketAddress::descriptor(), "port_value", 3, "port_specifier"},
      {core::SocketAddress::descriptor(), "named_port", 4, "port_specifier"},
      {core::SocketAddress::descriptor(), "resolver_name", 5, ""},
      {core::SocketAddress::descriptor(), "ipv4_compat", 6, ""},
      {core::Address::descriptor(), "socket_address", 1, "address"},
      {core::SelfConfigSource::descriptor(), "transport_api_version", 1, ""},
      {core::ConfigSource::descriptor(), "path", 1, "config_source_specifier"},
      {core::ConfigSource::descriptor(), "ads", 3, "config_source_specifier"},
      {core::ConfigSource::descriptor(), "self", 5, "config_source_specifier"},
      {core::ConfigSource::descriptor(), "initial_fetch_timeout", 4, ""},
      {core::ConfigSource::descriptor(), "resource_api_version", 6, ""},

      {endpoint::Endpoint::descriptor(), "address", 1, ""},
      {endpoint::Endpoint::descriptor(), "hostname", 3, ""},
      {endpoint::LbEndpoint::descriptor(), "endpoint", 1, "host_identifier"},
      {endpoint::LbEndpoint::descriptor(), "health_status", 2, ""},
      {endpoint::LbEndpoint::descriptor(), "metadata", 3, ""},
      {endpoint::LbEndpoint::descriptor(), "load_balancing_weight", 4, ""},
      {endpoint::LocalityLbEndpoints::descriptor(), "locality", 1, ""},
      {endpoint::LocalityLbEndpoints::descriptor(), "lb_endpoints", 2, ""},
      {endpoint::LocalityLbEndpoints::descriptor(), "load_balancing_weight", 3, ""},
      {endpoint::LocalityLbEndpoints::descriptor(), "priority", 5, ""},
      {endpoint::ClusterLoadAssignment::descriptor(), "cluster_name", 1, ""},
      {endpoint::ClusterLoadAssignment::descriptor(), "endpoints", 2, ""},
      {endpoint::ClusterLoadAssignment::descriptor(), "policy", 4, ""},
      {endpoint::ClusterLoadAssignment::descriptor(), "named_endpoints", 5, ""},
      {endpoint::ClusterLoadAssignment::Policy::descriptor(), "overprovisioning_factor", 3, ""},
      {endpoint::ClusterLoadAssignment::Policy::descriptor(), "endpoint_stale_after", 4, ""},
      {endpoint::ClusterLoadAssignment::Policy::descriptor(), "weighted_priority_health", 6, ""},

      {cluster::Cluster::descriptor(), "name", 1, ""},
      {cluster::Cluster::descriptor(), "type", 2, "cluster_discovery_type"},
      {cluster::Cluster::descriptor(), "cluster_type", 38, "cluster_discovery_type"},
      {cluster::Cluster::descriptor(), "eds_cluster_config", 3, ""},
      {cluster::Cluster::descriptor(), "connect_timeout", 4, ""},
      {cluster::Cluster::descriptor(), "lb_policy", 6, ""},
      {cluster::Cluster::descriptor(), "metadata", 25, ""},
      {cluster::Cluster::descriptor(), "load_assignment", 33, ""},
      {cluster::Cluster::descriptor(), "lrs_server", 42, ""},
      {cluster::Cluster::CustomClusterType::descriptor(), "name", 1, ""},
      {cluster::Cluster::CustomClusterType::descriptor(), "typed_config", 2, ""},
      {cluster::Cluster::EdsClusterConfig::descriptor(), "eds_config", 1, ""},
      {cluster::Cluster::EdsClusterConfig::descriptor(), "service_name", 2, ""},

      {listener::ApiListener::descriptor(), "api_listener", 1, ""},
      {listener::Listener::descriptor(), "name", 1, ""},
      {listener::Listener::descriptor(), "address", 2, ""},
      {listener::Listener::descriptor(), "api_listener", 19, ""},

      {route::RouteConfiguration::descriptor(), "name", 1, ""},
      {route::RouteConfiguration::descriptor(), "virtual_hosts", 2, ""},
      {route::VirtualHost::descriptor(), "name", 1, ""},
      {route::VirtualHost::descriptor(), "domains", 2, ""},
      {route::VirtualHost::descriptor(), "routes", 3, ""},
      {route::Route::descriptor(), "name", 14, ""},
      {route::Route::descriptor(), "match", 1, ""},
      {route::Route::descriptor(), "route", 2, "action"},
      {route::Route::descriptor(), "non_forwarding_action", 18, "action"},
      {route::RouteMatch::descriptor(), "prefix", 1, "path_specifier"},
      {route::RouteMatch::descriptor(), "path", 2, "path_specifier"},
      {route::RouteMatch::descriptor(), "case_sensitive", 4, ""},
      {route::RouteAction::descriptor(), "cluster", 1, "cluster_specifier"},
      {route::RouteAction::descriptor(), "timeout", 8, ""},
      {route::RouteAction::descriptor(), "max_stream_duration", 36, ""},
      {route::RouteAction::MaxStreamDuration::descriptor(), "max_stream_duration", 1, ""},
      {route::RouteAction::MaxStreamDuration::descriptor(), "grpc_timeout_header_max", 2, ""},
      {route::RouteAction::MaxStreamDuration::descriptor(), "grpc_timeout_header_offset", 3, ""},

      {hcm::HttpConnectionManager::descriptor(), "codec_type", 1, ""},
      {hcm::HttpConnectionManager::descriptor(), "stat_prefix", 2, ""},
      {hcm::HttpConnectionManager::descriptor(), "rds", 3, "route_specifier"},
      {hcm::HttpConnectionManager::descriptor(), "route_config", 4, "route_specifier"},
      {hcm::HttpConnectionManager::descriptor(), "http_filters", 5, ""},
      {hcm::Rds::descriptor(), "config_source", 1, ""},
      {hcm::Rds::descriptor(), "route_config_name", 2, ""},
      {hcm::HttpFilter::descriptor(), "name", 1, ""},
      {hcm::HttpFilter::descriptor(), "typed_config", 4, "config_type"},
      {hcm::HttpFilter::descriptor(), "is_optional", 6, ""},

      {discovery::DiscoveryRequest::descriptor(), "version_info", 1, ""},
      {discovery::DiscoveryRequest::descriptor(), "node", 2, ""},
      {discovery::DiscoveryRequest::descriptor(), "resource_names", 3, ""},
      {discovery::DiscoveryRequest::descriptor(), "type_url", 4, ""},
      {discovery::DiscoveryRequest::descriptor(), "response_nonce", 5, ""},
      {discovery::DiscoveryRequest::descriptor(), "error_detail", 6, ""},
      {discovery::DiscoveryResponse::descriptor(), "version_info", 1, ""},
      {discovery::DiscoveryResponse::descriptor(), "resources", 2, ""},
      {discovery::DiscoveryResponse::descriptor(), "canary", 3, ""},
      {discovery::DiscoveryResponse::descriptor(), "type_url", 4, ""},
      {discovery::DiscoveryResponse::descriptor(), "nonce", 5, ""},
      {discovery::DiscoveryResponse::descriptor(), "control_plane", 6, ""},
  };
}

// A field's type as the .proto spells it: "uint32", "repeated string",
// "envoy.config.core.v3.HealthStatus", "map<string, google.protobuf.Struct>".
std::string TypeOf(const FieldDescriptor* field) {
  std::string type;
  if (field->is_map()) {
    return "map<" + TypeOf(field->message_type()->map_key()) + ", " +
           TypeOf(field->message_type()->map_value()) + ">";
  }
  if (field->is_repeated()) type = "repeated ";
  if (field->type() == FieldDescriptor::TYPE_MESSAGE) {
    return type + field->message_type()->full_name();
  }
  if (field->type() == FieldDescriptor::TYPE_ENUM) return type + field->enum_type()->full_name();
  return type + field->type_name();
}

TEST(XdsProtoTest, FieldNumbersAndOneofsAreEnvoys) {
  for (const FieldNumber& f : EnvoyFieldNumbers()) {
    SCOPED_TRACE(f.message->full_name() + "." + f.field);
    const FieldDescriptor* field = f.message->FindFieldByName(f.field);
    ASSERT_NE(field, nullptr);
    EXPECT_EQ(field->number(), f.number);
    const auto* oneof = field->real_containing_oneof();
    EXPECT_EQ(oneof == nullptr ? std::string() : oneof->name(), f.oneof);
  }
}

// The types where a slip would still compile but change the bytes: a wrapper
// for a scalar (a message on the wire, not a varint), an enum, a Duration.
// The rest are as Envoy's too (see the .proto files).
TEST(XdsProtoTest, FieldTypesAreEnvoys) {
  auto type = [](const Descriptor* m, const char* name) {
    const FieldDescriptor* field = m->FindFieldByName(name);
    return field == nullptr ? std::string("(missing)") : TypeOf(field);
  };
  EXPECT_EQ(type(endpoint::LbEndpoint::descriptor(), "load_balancing_weight"),
            "google.protobuf.UInt32Value");
  EXPECT_EQ(type(endpoint::LbEndpoint::descriptor(), "health_status"),
            "envoy.config.core.v3.HealthStatus");
  EXPECT_EQ(type(endpoint::LocalityLbEndpoints::descriptor(), "load_balancing_weight"),
            "google.protobuf.UInt32Value");
  EXPECT_EQ(type(endpoint::LocalityLbEndpoints::descriptor(), "priority"), "uint32");
  EXPECT_EQ(type(endpoint::ClusterLoadAssignment::Policy::descriptor(), "overprovisioning_factor"),
            "google.protobuf.UInt32Value");
  EXPECT_EQ(type(endpoint::ClusterLoadAssignment::descriptor(), "named_endpoints"),
            "map<string, envoy.config.endpoint.v3.Endpoint>");
  EXPECT_EQ(type(core::SocketAddress::descriptor(), "port_value"), "uint32");
  EXPECT_EQ(type(core::Node::descriptor(), "metadata"), "google.protobuf.Struct");
  EXPECT_EQ(type(core::Metadata::descriptor(), "filter_metadata"),
            "map<string, google.protobuf.Struct>");
  EXPECT_EQ(type(cluster::Cluster::descriptor(), "connect_timeout"), "google.protobuf.Duration");
  EXPECT_EQ(type(route::RouteMatch::descriptor(), "case_sensitive"), "google.protobuf.BoolValue");
  EXPECT_EQ(type(route::RouteAction::descriptor(), "timeout"), "google.protobuf.Duration");
  EXPECT_EQ(type(discovery::DiscoveryRequest::descriptor(), "error_detail"), "google.rpc.Status");
  EXPECT_EQ(type(discovery::DiscoveryResponse::descriptor(), "resources"),
            "repeated google.protobuf.Any");
  EXPECT_EQ(type(google::rpc::Status::descriptor(), "code"), "int32");
}

// Every message of every file in the subset, nested ones included (map entries
// aside), with its fields listed above, or with none.
void CollectMessages(const Descriptor* d, std::set<const Descriptor*>* out) {
  if (d->options().map_entry()) return;
  out->insert(d);
  for (int i = 0; i < d->nested_type_count(); ++i) CollectMessages(d->nested_type(i), out);
}

TEST(XdsProtoTest, CoversEveryField) {
  std::map<const Descriptor*, int> listed;
  std::set<const google::protobuf::FileDescriptor*> files;
  for (const FieldNumber& f : EnvoyFieldNumbers()) {
    ++listed[f.message];
    files.insert(f.message->file());
  }
  // The files with no field listed: a message without fields, an enum alone.
  files.insert(router::Router::descriptor()->file());
  files.insert(core::HealthStatus_descriptor()->file());
  EXPECT_EQ(files.size(), 15u);  // every .proto of src/server/xds/proto but ads.proto (a service)
  std::set<const Descriptor*> messages;
  for (const auto* file : files) {
    for (int i = 0; i < file->message_type_count(); ++i) {
      CollectMessages(file->message_type(i), &messages);
    }
  }
  for (const Descriptor* message : messages) {
    const auto it = listed.find(message);
    EXPECT_EQ(message->field_count(), it == listed.end() ? 0 : it->second)
        << message->full_name();
  }
  // The messages without fields.
  EXPECT_EQ(messages.size(), listed.size() + 3);
  EXPECT_EQ(core::AggregatedConfigSource::descriptor()->field_count(), 0);
  EXPECT_EQ(route::NonForwardingAction::descriptor()->field_count(), 0);
  EXPECT_EQ(router::Router::descriptor()->field_count(), 0);
}

// The generated constants a server's code will use, for the fields the xDS
// server reads or writes most.
static_assert(discovery::DiscoveryRequest::kResponseNonceFieldNumber == 5);
static_assert(discovery::DiscoveryRequest::kErrorDetailFieldNumber == 6);
static_assert(discovery::DiscoveryResponse::kNonceFieldNumber == 5);
static_assert(listener::Listener::kApiListenerFieldNumber == 19);
static_assert(cluster::Cluster::kEdsClusterConfigFieldNumber == 3);
static_assert(cluster::Cluster::kTypeFieldNumber == 2);
static_assert(cluster::Cluster::kLrsServerFieldNumber == 42);
static_assert(endpoint::LocalityLbEndpoints::kLoadBalancingWeightFieldNumber == 3);
static_assert(endpoint::LocalityLbEndpoints::kPriorityFieldNumber == 5);
static_assert(endpoint::LbEndpoint::kHealthStatusFieldNumber == 2);
static_assert(endpoint::LbEndpoint::kLoadBalancingWeightFieldNumber == 4);
static_assert(hcm::HttpConnectionManager::kHttpFiltersFieldNumber == 5);
static_assert(hcm::HttpFilter::kTypedConfigFieldNumber == 4);
static_assert(route::Route::kNameFieldNumber == 14);
static_assert(route::RouteAction::kMaxStreamDurationFieldNumber == 36);
static_assert(core::Node::kClientFeaturesFieldNumber == 10);

// Enum values, which travel as numbers too.
void ExpectEnumValues(const EnumDescriptor* e, const std::map<std::string, int>& values) {
  SCOPED_TRACE(e->full_name());
  EXPECT_EQ(e->value_count(), static_cast<int>(values.size()));
  for (const auto& [name, number] : values) {
    const auto* v = e->FindValueByName(name);
    ASSERT_NE(v, nullptr) << name;
    EXPECT_EQ(v->number(), number) << name;
  }
}

TEST(XdsProtoTest, EnumValuesAreEnvoys) {
  ExpectEnumValues(core::HealthStatus_descriptor(),
                   {{"UNKNOWN", 0}, {"HEALTHY", 1}, {"UNHEALTHY", 2}, {"DRAINING", 3},
                    {"TIMEOUT", 4}, {"DEGRADED", 5}});
  ExpectEnumValues(core::ApiVersion_descriptor(), {{"AUTO", 0}, {"V2", 1}, {"V3", 2}});
  ExpectEnumValues(core::SocketAddress::Protocol_descriptor(), {{"TCP", 0}, {"UDP", 1}});
  ExpectEnumValues(cluster::Cluster::DiscoveryType_descriptor(),
                   {{"STATIC", 0}, {"STRICT_DNS", 1}, {"LOGICAL_DNS", 2}, {"EDS", 3},
                    {"ORIGINAL_DST", 4}});
  ExpectEnumValues(cluster::Cluster::LbPolicy_descriptor(),
                   {{"ROUND_ROBIN", 0}, {"LEAST_REQUEST", 1}, {"RING_HASH", 2}, {"RANDOM", 3},
                    {"MAGLEV", 5}, {"CLUSTER_PROVIDED", 6}, {"LOAD_BALANCING_POLICY_CONFIG", 7}});
  ExpectEnumValues(hcm::HttpConnectionManager::CodecType_descriptor(),
                   {{"AUTO", 0}, {"HTTP1", 1}, {"HTTP2", 2}, {"HTTP3", 3}});
}

// The bytes themselves, hand-encoded: tag = field number << 3 | wire type.
TEST(XdsProtoTest, WireBytesCarryEnvoysNumbers) {
  endpoint::LbEndpoint lb;
  lb.set_health_status(core::HEALTHY);
  EXPECT_EQ(lb.SerializeAsString(), std::string("\x10\x01", 2));  // field 2, varint 1

  discovery::DiscoveryRequest req;
  req.set_response_nonce("n");
  EXPECT_EQ(req.SerializeAsString(), std::string("\x2a\x01n", 3));  // field 5, 1 byte

  listener::Listener l;
  l.mutable_api_listener();
  EXPECT_EQ(l.SerializeAsString(), std::string("\x9a\x01\x00", 3));  // field 19, empty
}

// A ClusterLoadAssignment as the EDS answer for one service: two
// localities, weights, health, a policy, through bytes and back.
endpoint::ClusterLoadAssignment SampleAssignment() {
  endpoint::ClusterLoadAssignment cla;
  cla.set_cluster_name("orders");
  cla.mutable_policy()->mutable_overprovisioning_factor()->set_value(100);
  struct Host {
    const char* ip;
    std::uint32_t port;
    core::HealthStatus health;
  };
  const std::vector<std::pair<const char*, std::vector<Host>>> zones = {
      {"zone-a", {{"10.0.0.1", 8080, core::HEALTHY}, {"10.0.0.2", 8080, core::DRAINING}}},
      {"zone-b", {{"10.0.1.7", 9090, core::UNKNOWN}}},
  };
  std::uint32_t priority = 0;
  for (const auto& [zone, hosts] : zones) {
    endpoint::LocalityLbEndpoints* loc = cla.add_endpoints();
    loc->mutable_locality()->set_region("eu");
    loc->mutable_locality()->set_zone(zone);
    loc->mutable_load_balancing_weight()->set_value(10);
    loc->set_priority(priority++);
    for (const Host& h : hosts) {
      endpoint::LbEndpoint* lb = loc->add_lb_endpoints();
      core::SocketAddress* sa = lb->mutable_endpoint()->mutable_address()->mutable_socket_address();
      sa->set_address(h.ip);
      sa->set_port_value(h.port);
      lb->set_health_status(h.health);
      lb->mutable_load_balancing_weight()->set_value(1);
    }
  }
  return cla;
}

TEST(XdsProtoTest, ClusterLoadAssignmentRoundTripsThroughBytes) {
  const endpoint::ClusterLoadAssignment cla = SampleAssignment();
  std::string bytes;
  ASSERT_TRUE(cla.SerializeToString(&bytes));

  endpoint::ClusterLoadAssignment back;
  ASSERT_TRUE(back.ParseFromString(bytes));
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(cla, back))
      << back.DebugString();
  ASSERT_EQ(back.endpoints_size(), 2);
  EXPECT_EQ(back.endpoints(0).locality().zone(), "zone-a");
  EXPECT_EQ(back.endpoints(1).priority(), 1u);
  EXPECT_EQ(back.endpoints(0).lb_endpoints(1).health_status(), core::DRAINING);
  EXPECT_EQ(back.endpoints(1).lb_endpoints(0).endpoint().address().socket_address().port_value(),
            9090u);
  EXPECT_EQ(back.policy().overprovisioning_factor().value(), 100u);

  // As a DiscoveryResponse resource, the way EDS sends it.
  discovery::DiscoveryResponse resp;
  resp.set_type_url("type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment");
  resp.add_resources()->PackFrom(cla);
  discovery::DiscoveryResponse resp_back;
  ASSERT_TRUE(resp_back.ParseFromString(resp.SerializeAsString()));
  endpoint::ClusterLoadAssignment unpacked;
  ASSERT_TRUE(resp_back.resources(0).UnpackTo(&unpacked));
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(cla, unpacked));
}

// The ADS method is served at the path gRPC's xDS client calls, over an
// in-process channel (no socket). The service answers each request with its
// type and a nonce made of the node id and the first resource name.
class EchoNonceAds final : public discovery::AggregatedDiscoveryService::Service {
  grpc::Status StreamAggregatedResources(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<discovery::DiscoveryResponse, discovery::DiscoveryRequest>* stream)
      override {
    discovery::DiscoveryRequest req;
    while (stream->Read(&req)) {
      discovery::DiscoveryResponse resp;
      resp.set_type_url(req.type_url());
      resp.set_nonce(req.node().id() + "/" + req.resource_names(0));
      stream->Write(resp);
    }
    return grpc::Status::OK;
  }
};

// One request on a bidirectional stream opened at `method`, with a generic
// stub (the path is only this string), and the response if one came; then the
// call's status.
struct AdsExchange {
  bool answered = false;
  discovery::DiscoveryResponse response;
  grpc::Status status;
};

AdsExchange ExchangeOnce(grpc::Server& server, const std::string& method,
                         const discovery::DiscoveryRequest& req) {
  using Stub =
      grpc::TemplatedGenericStub<discovery::DiscoveryRequest, discovery::DiscoveryResponse>;
  Stub stub(server.InProcessChannel(grpc::ChannelArguments()));
  grpc::ClientContext ctx;
  grpc::CompletionQueue cq;
  // Each operation's completion, in order; false when it failed.
  auto step = [&cq](std::intptr_t tag) {
    void* got = nullptr;
    bool ok = false;
    EXPECT_TRUE(cq.Next(&got, &ok));
    EXPECT_EQ(got, reinterpret_cast<void*>(tag));
    return ok;
  };
  AdsExchange out;
  auto call = stub.PrepareCall(&ctx, method, &cq);
  call->StartCall(reinterpret_cast<void*>(1));
  if (step(1)) {
    call->Write(req, reinterpret_cast<void*>(2));
    if (step(2)) {
      call->Read(&out.response, reinterpret_cast<void*>(3));
      out.answered = step(3);
      call->WritesDone(reinterpret_cast<void*>(4));
      step(4);
    }
  }
  call->Finish(&out.status, reinterpret_cast<void*>(5));
  EXPECT_TRUE(step(5));
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
  return out;
}

discovery::DiscoveryRequest ListenerRequest() {
  discovery::DiscoveryRequest req;
  req.mutable_node()->set_id("client-1");
  req.set_type_url("type.googleapis.com/envoy.config.listener.v3.Listener");
  req.add_resource_names("orders");
  return req;
}

TEST(XdsProtoTest, AdsIsServedAtGrpcsMethodPath) {
  EchoNonceAds service;
  grpc::ServerBuilder builder;
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);

  const AdsExchange x = ExchangeOnce(
      *server, "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources",
      ListenerRequest());
  EXPECT_TRUE(x.answered);
  EXPECT_EQ(x.response.type_url(), "type.googleapis.com/envoy.config.listener.v3.Listener");
  EXPECT_EQ(x.response.nonce(), "client-1/orders");
  EXPECT_TRUE(x.status.ok()) << x.status.error_message();
  server->Shutdown();
}

// Delta xDS is left out of ads.proto: a client that asks for it is told
// UNIMPLEMENTED (gRPC 1.51's xDS client speaks state of the world only).
TEST(XdsProtoTest, DeltaAdsIsUnimplemented) {
  EchoNonceAds service;
  grpc::ServerBuilder builder;
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);

  const AdsExchange x = ExchangeOnce(
      *server, "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources",
      ListenerRequest());
  EXPECT_FALSE(x.answered);
  EXPECT_EQ(x.status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  server->Shutdown();
}

}  // namespace
}  // namespace muster::xds
