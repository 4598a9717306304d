// greeter_server: a gRPC Greeter (greeter.proto) that registers itself with
// musterd and keeps itself registered with a muster::Heartbeater.
//
//   SayHello{name: "ann"}  ->  {message: "Hello, ann", instance_id: "greeter-1"}
//
// Usage:
//   greeter_server --registry http://127.0.0.1:8470 --listen 127.0.0.1:0 --id greeter-1
//
// It prints "greeter_server <id> listening on <host:port>" once it serves and
// is registered (with the port actually bound). On SIGINT or SIGTERM it
// deregisters first, so that clients stop picking it, then stops serving
// (calls in flight get a few seconds to finish) and exits.
//
// Only the public SDK (<muster/muster.h>), gRPC and CLI11.
#include <pthread.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>

#include <grpcpp/grpcpp.h>

#include "greeter.grpc.pb.h"
#include "muster/muster.h"

namespace {

// Answers with the instance id, which is set once the server knows its port
// (the default id is greeter-PORT); a call before that (nobody knows the
// address yet) answers an empty id.
class GreeterService final : public muster::examples::Greeter::Service {
 public:
  void set_id(std::string id) { id_.store(std::make_shared<const std::string>(std::move(id))); }

  grpc::Status SayHello(grpc::ServerContext*, const muster::examples::HelloRequest* request,
                        muster::examples::HelloReply* reply) override {
    reply->set_message("Hello, " + request->name());
    if (auto id = id_.load()) reply->set_instance_id(*id);
    return grpc::Status::OK;
  }

 private:
  std::atomic<std::shared_ptr<const std::string>> id_;
};

// musterd's host:port from "http://host:port" or "host:port" (the SDK's
// musterd backend speaks plain HTTP).
std::string RegistryAddress(std::string_view flag) {
  constexpr std::string_view kHttp = "http://";
  if (flag.substr(0, kHttp.size()) == kHttp) flag.remove_prefix(kHttp.size());
  if (!flag.empty() && flag.back() == '/') flag.remove_suffix(1);
  return std::string(flag);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"greeter_server — a gRPC Greeter that registers itself with musterd"};
  std::string registry_flag = "http://127.0.0.1:8470";
  std::string listen = "127.0.0.1:0";
  std::string id;
  std::string service = "greeter";
  uint32_t ttl = 10;
  uint32_t weight = muster::kDefaultWeight;
  app.add_option("--registry", registry_flag, "musterd address: http://host:port or host:port")
      ->capture_default_str();
  app.add_option("--listen", listen, "host:port to serve on (port 0: any free port)")
      ->capture_default_str();
  app.add_option("--id", id, "instance id (default: greeter-PORT)");
  app.add_option("--service", service, "service name")->capture_default_str();
  app.add_option("--ttl", ttl, "lease TTL in seconds")
      ->capture_default_str()
      ->check(CLI::Range(1, 86400));
  app.add_option("--weight", weight, "weight for weighted balancers")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  CLI11_PARSE(app, argc, argv);

  // SIGINT and SIGTERM are blocked here, before any thread starts (gRPC's,
  // the heartbeater's inherit the mask), and taken by sigwait below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    std::cerr << "greeter_server: --listen must be host:port\n";
    return 2;
  }
  const std::string host = listen.substr(0, colon);

  // Checks the address; connects to nothing yet.
  muster::MusterRegistryOptions registry_options;
  registry_options.addresses = {RegistryAddress(registry_flag)};
  auto registry = muster::NewMusterRegistry(registry_options);
  if (!registry.ok()) {
    std::cerr << "greeter_server: " << registry.status() << "\n";
    return 2;
  }

  // Serve first, so that the registered address has the real port.
  GreeterService greeter;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&greeter);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::cerr << "greeter_server: cannot listen on " << listen << "\n";
    return 1;
  }
  const std::string address = host + ":" + std::to_string(port);
  if (id.empty()) id = "greeter-" + std::to_string(port);
  greeter.set_id(id);

  muster::Instance me;
  me.service = service;
  me.id = id;
  me.address = address;
  me.ttl_seconds = ttl;
  me.weight = weight;
  muster::Heartbeater heartbeater(registry->get(), me, {});
  if (absl::Status s = heartbeater.Start(); !s.ok()) {
    std::cerr << "greeter_server: cannot register with " << registry_flag << ": " << s << "\n";
    server->Shutdown();
    return 1;
  }
  std::cout << "greeter_server " << id << " listening on " << address << std::endl;

  int signal_number = 0;
  while (sigwait(&stop_signals, &signal_number) != 0) {
  }
  heartbeater.Stop();  // deregisters: clients stop picking this instance
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  const auto stats = heartbeater.stats();
  std::cout << "greeter_server " << id << " stopped (" << stats.heartbeats << " heartbeats, "
            << stats.registrations << " registrations, " << stats.failures << " failures)"
            << std::endl;
  return 0;
}
