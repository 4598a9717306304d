// greeter_xds_client: calls the greeter service with plain gRPC, by the
// target xds:///greeter. No Muster code at all: gRPC's own xDS client asks
// musterd's xDS server (--xds-listen, docs/grpc.md) for the healthy instances
// of the service and spreads the calls over them by their weights, following
// every change musterd pushes. Any gRPC client with xDS support, in any
// language, can do the same.
//
// Usage:
//   musterctl xds-bootstrap > /tmp/xds.json
//   GRPC_XDS_BOOTSTRAP=/tmp/xds.json greeter_xds_client --count 20
//   export GRPC_XDS_BOOTSTRAP_CONFIG="$(musterctl xds-bootstrap)"
//   greeter_xds_client --target xds:///default/greeter/v2 --verbose
//
// gRPC reads its bootstrap (where the xDS server is, and this client's node
// id) from the file named by GRPC_XDS_BOOTSTRAP, or else from the JSON in
// GRPC_XDS_BOOTSTRAP_CONFIG; with neither set this program says so and exits
// 2 instead of letting every call fail.
//
// Prints how many calls each instance answered and how many failed (with
// --verbose, every call); exits 1 when any call failed, 2 on a usage error.
//
// Only gRPC, the generated greeter code and CLI11.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "greeter.grpc.pb.h"
#include "duration_flag.h"

namespace {

using std::chrono::milliseconds;

using example_flags::ParseDuration;

std::string_view CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "UNKNOWN_CODE";
  }
}

// Empty when gRPC will find a bootstrap for an xds: target, else what to tell
// the user. gRPC takes GRPC_XDS_BOOTSTRAP (a file) when it is set at all, and
// GRPC_XDS_BOOTSTRAP_CONFIG (the JSON itself) only otherwise.
std::string BootstrapProblem() {
  if (const char* file = std::getenv("GRPC_XDS_BOOTSTRAP")) {
    if (std::ifstream(file).good()) return {};
    return "GRPC_XDS_BOOTSTRAP names \"" + std::string(file) +
           "\", which cannot be read.\nWrite the bootstrap there with\n"
           "  musterctl xds-bootstrap > " + (*file != '\0' ? std::string(file) : "/tmp/xds.json") +
           "\n";
  }
  if (const char* config = std::getenv("GRPC_XDS_BOOTSTRAP_CONFIG"); config != nullptr && *config) {
    return {};
  }
  return "xds: targets need an xDS bootstrap, and neither GRPC_XDS_BOOTSTRAP (a file) nor\n"
         "GRPC_XDS_BOOTSTRAP_CONFIG (the JSON itself) is set. musterctl writes one for the\n"
         "musterd at --addr (default 127.0.0.1:8470):\n"
         "  musterctl xds-bootstrap > /tmp/xds.json\n"
         "  GRPC_XDS_BOOTSTRAP=/tmp/xds.json greeter_xds_client\n";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"greeter_xds_client — calls the greeter service with plain gRPC through xDS"};
  std::string target = "xds:///greeter";
  int count = 10;
  std::string interval_text = "100ms";
  std::string timeout_text = "2s";
  bool verbose = false;
  app.add_option("--target", target,
                 "gRPC target: xds:///SERVICE, xds:///NAMESPACE/SERVICE or "
                 "xds:///NAMESPACE/SERVICE/VERSION")
      ->capture_default_str();
  app.add_option("--count", count, "calls to make")
      ->capture_default_str()
      ->check(CLI::Range(0, 10'000'000));
  app.add_option("--interval", interval_text, "pause between calls (e.g. 100ms, 1s)")
      ->capture_default_str();
  app.add_option("--timeout", timeout_text, "deadline of one call")->capture_default_str();
  app.add_flag("-v,--verbose", verbose, "print every call");
  CLI11_PARSE(app, argc, argv);
  const auto interval = ParseDuration(interval_text);
  const auto timeout = ParseDuration(timeout_text);
  if (!interval || !timeout) {
    std::cerr << "greeter_xds_client: --interval and --timeout take durations like 100ms or 2s\n";
    return 2;
  }
  if (target.rfind("xds:", 0) == 0) {
    if (std::string problem = BootstrapProblem(); !problem.empty()) {
      std::cerr << "greeter_xds_client: " << problem;
      return 2;
    }
  }

  // One channel for the whole run: gRPC keeps a subchannel per instance
  // under it and picks one per call. The credentials are those of the calls
  // to the greeters (plaintext here); the bootstrap's channel_creds are those
  // of the stream to musterd.
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  std::unique_ptr<muster::examples::Greeter::Stub> stub = muster::examples::Greeter::NewStub(channel);

  std::map<std::string, int> answered;  // instance id -> calls it answered
  int failed = 0;
  for (int i = 1; i <= count; ++i) {
    muster::examples::HelloRequest request;
    request.set_name("call-" + std::to_string(i));
    muster::examples::HelloReply reply;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + *timeout);
    const grpc::Status s = stub->SayHello(&context, request, &reply);
    if (s.ok()) {
      ++answered[reply.instance_id()];
      if (verbose) std::cout << "call " << i << " ok " << reply.instance_id() << std::endl;
    } else {
      ++failed;
      std::cout << "call " << i << " failed: " << CodeName(s.error_code()) << ": "
                << s.error_message() << std::endl;
    }
    if (i < count) std::this_thread::sleep_for(*interval);
  }

  std::cout << "greeter_xds_client: " << count << " calls to " << target << ": "
            << (count - failed) << " ok, " << failed << " failed\n";
  for (const auto& [id, n] : answered) std::cout << "  " << id << ": " << n << "\n";
  std::cout.flush();
  return failed == 0 ? 0 : 1;
}
