// A gRPC client of the Greeter by name through gRPC's own xDS client
// (xds:///TARGET), for the tests of musterd's xDS server: the process must
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

#include <grpcpp/grpcpp.h>

#include "core/strings.h"
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
