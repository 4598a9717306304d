// The clients of the tests of musterd's xDS server: RawAdsStream, an ADS
// stream of the generated stub that the test drives request by request; and
// XdsGreeter, a gRPC client of the Greeter by name through gRPC's own xDS
// client (xds:///TARGET), for which the process must
// have GRPC_XDS_BOOTSTRAP_CONFIG (or GRPC_XDS_BOOTSTRAP) naming musterd's xDS
// address before its first xds:/// channel (gRPC keeps one xDS client per
// process).
//
// Example:
//   setenv("GRPC_XDS_BOOTSTRAP_CONFIG", XdsBootstrap(musterd.xds_address()).c_str(), 1);
//   XdsGreeter client("orders");
//   ASSERT_TRUE(client.Reaches("orders-1"));
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "core/strings.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "greeter.grpc.pb.h"

namespace muster::testing {

inline constexpr char kEdsType[] =
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";

// How long a pushed change may take to reach the client on a loaded machine;
// it comes at once over the ADS stream.
inline constexpr std::chrono::milliseconds kPushed = std::chrono::seconds(10);

// The bootstrap of a client of the xDS server at `address`.
inline std::string XdsBootstrap(const std::string& address) {
  return StrCat(R"({"xds_servers":[{"server_uri":")", address,
                R"(","channel_creds":[{"type":"insecure"}],"server_features":["xds_v3"]}],)",
                R"("node":{"id":"muster-xds-test","cluster":"tests"}})");
}

// Polls `done` every 20 ms until it holds; false when `timeout` passed first.
template <typename F>
bool WaitUntil(F done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

// One ADS stream to the xDS server at `address`, ended by the deadline.
class RawAdsStream {
 public:
  using Request = envoy::service::discovery::v3::DiscoveryRequest;
  using Response = envoy::service::discovery::v3::DiscoveryResponse;
  using Assignment = envoy::config::endpoint::v3::ClusterLoadAssignment;

  explicit RawAdsStream(const std::string& address,
                        std::chrono::milliseconds deadline = std::chrono::seconds(20))
      : stub_(envoy::service::discovery::v3::AggregatedDiscoveryService::NewStub(
            grpc::CreateChannel(address, grpc::InsecureChannelCredentials()))) {
    ctx_.set_deadline(std::chrono::system_clock::now() + deadline);
    stream_ = stub_->StreamAggregatedResources(&ctx_);
  }
  ~RawAdsStream() { ctx_.TryCancel(); }

  bool Write(const Request& request) { return stream_->Write(request); }
  // Asks EDS for `names`, as an ACK of `nonce` (empty: a first request).
  bool FollowEndpoints(const std::vector<std::string>& names, const std::string& nonce = "") {
    Request request;
    request.set_type_url(kEdsType);
    for (const std::string& name : names) request.add_resource_names(name);
    request.set_response_nonce(nonce);
    return Write(request);
  }
  // The next response; false once the stream ended.
  bool Read(Response* response) { return stream_->Read(response); }
  // The assignments of an EDS response (empty for another type).
  static std::vector<Assignment> Assignments(const Response& response) {
    std::vector<Assignment> out;
    for (const auto& any : response.resources()) {
      if (!any.UnpackTo(&out.emplace_back())) out.pop_back();
    }
    return out;
  }
  // Reads to the end of the stream and returns how it ended.
  grpc::Status Finish() {
    Response ignored;
    while (stream_->Read(&ignored)) {
    }
    return stream_->Finish();
  }

 private:
  std::unique_ptr<envoy::service::discovery::v3::AggregatedDiscoveryService::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<Request, Response>> stream_;
};

// A gRPC client of xds:///TARGET.
class XdsGreeter {
 public:
  explicit XdsGreeter(const std::string& target)
      : channel_(grpc::CreateChannel("xds:///" + target, grpc::InsecureChannelCredentials())),
        stub_(examples::Greeter::NewStub(channel_)) {}

  // The id of the instance that answered, or the error as "!CODE message".
  std::string Call(std::chrono::milliseconds timeout = std::chrono::seconds(2)) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + timeout);
    examples::HelloRequest request;
    request.set_name("xds");
    examples::HelloReply reply;
    grpc::Status s = stub_->SayHello(&ctx, request, &reply);
    if (!s.ok()) return StrCat("!", static_cast<int>(s.error_code()), " ", s.error_message());
    return reply.instance_id();
  }

  // Calls `n` times: answers by instance id (errors under their "!..." text).
  std::map<std::string, int> Spread(int n) {
    std::map<std::string, int> by;
    for (int i = 0; i < n; ++i) ++by[Call()];
    return by;
  }

  // Calls until `id` answers.
  bool Reaches(const std::string& id, std::chrono::milliseconds timeout = kPushed) {
    return WaitUntil([&] { return Call() == id; }, timeout);
  }

  // Calls until `window` calls in a row answer without `id`, then `more`
  // more: true when none of those reached it.
  bool Avoids(const std::string& id, int window = 50, int more = 200) {
    int clean = 0;
    const bool settled = WaitUntil(
        [&] {
          clean = Call() == id ? 0 : clean + 1;
          return clean >= window;
        },
        kPushed);
    if (!settled) return false;
    for (int i = 0; i < more; ++i) {
      if (Call() == id) return false;
    }
    return true;
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<examples::Greeter::Stub> stub_;
};

}  // namespace muster::testing
