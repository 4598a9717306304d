// greeter_pool_client: calls the "greeter" service by name through a
// muster::GrpcChannelPool. Discovery finds the instances (musterd pushes
// every change), the pool keeps one gRPC channel per instance, the chosen
// balancer picks one per call, and a call that fails in transit (UNAVAILABLE,
// DEADLINE_EXCEEDED) is retried on another instance; instances that keep
// failing are ejected for a while.
//
// Usage:
//   greeter_pool_client --registry http://127.0.0.1:8470 --balancer round_robin --count 20
//   greeter_pool_client --balancer ring_hash --key user-42   # every call to one instance
//
// Prints how many calls each instance answered and how many failed; exits 1
// when any call failed after its retries, 2 on a usage error.
//
// Only the public SDK (<muster/muster.h>, <muster/grpc_channel_pool.h>), gRPC
// and CLI11.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "greeter.grpc.pb.h"
#include "muster/grpc_channel_pool.h"
#include "muster/muster.h"
#include "duration_flag.h"

namespace {

using std::chrono::milliseconds;

using example_flags::ParseDuration;

// musterd's host:port from "http://host:port" or "host:port".
std::string RegistryAddress(std::string_view flag) {
  constexpr std::string_view kHttp = "http://";
  if (flag.substr(0, kHttp.size()) == kHttp) flag.remove_prefix(kHttp.size());
  if (!flag.empty() && flag.back() == '/') flag.remove_suffix(1);
  return std::string(flag);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"greeter_pool_client — calls the greeter service by name through GrpcChannelPool"};
  std::string registry_flag = "http://127.0.0.1:8470";
  std::string service = "greeter";
  std::string balancer = "round_robin";
  std::string key;
  int count = 10;
  std::string interval_text = "100ms";
  std::string timeout_text = "1s";
  int max_attempts = 3;
  bool verbose = false;
  app.add_option("--registry", registry_flag, "musterd address: http://host:port or host:port")
      ->capture_default_str();
  app.add_option("--service", service, "service to call")->capture_default_str();
  std::string policies;
  for (std::string_view p : muster::BalancerPolicies()) {
    policies += (policies.empty() ? "" : ", ") + std::string(p);
  }
  app.add_option("--balancer", balancer, "balancer policy: " + policies)->capture_default_str();
  app.add_option("--key", key, "request key for ring_hash and maglev (same key, same instance)");
  app.add_option("--count", count, "calls to make")
      ->capture_default_str()
      ->check(CLI::Range(0, 10'000'000));
  app.add_option("--interval", interval_text, "pause between calls (e.g. 100ms, 1s)")
      ->capture_default_str();
  app.add_option("--timeout", timeout_text, "deadline of one attempt")->capture_default_str();
  app.add_option("--max-attempts", max_attempts, "attempts per call, each on another instance")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  app.add_flag("-v,--verbose", verbose, "print every call and every failed attempt");
  CLI11_PARSE(app, argc, argv);
  const auto interval = ParseDuration(interval_text);
  const auto timeout = ParseDuration(timeout_text);
  if (!interval || !timeout) {
    std::cerr << "greeter_pool_client: --interval and --timeout take durations like 100ms or 2s\n";
    return 2;
  }

  muster::MusterRegistryOptions registry_options;
  registry_options.addresses = {RegistryAddress(registry_flag)};
  auto registry = muster::NewMusterRegistry(registry_options);
  if (!registry.ok()) {
    std::cerr << "greeter_pool_client: " << registry.status() << "\n";
    return 2;
  }
  muster::DiscoveryOptions discovery_options;
  discovery_options.balancer = balancer;
  muster::Discovery discovery(registry->get(), discovery_options);
  muster::GrpcChannelPoolOptions pool_options;
  pool_options.call_policy.max_attempts = max_attempts;
  pool_options.credentials = grpc::InsecureChannelCredentials();
  muster::GrpcChannelPool pool(&discovery, pool_options);
  muster::ServiceQuery query;
  query.service = service;
  muster::PickRequest pick;
  if (!key.empty()) pick.hash_key = std::hash<std::string>()(key);

  std::map<std::string, int> answered;  // instance id -> calls it answered
  int failed = 0;
  int attempts = 0;
  for (int i = 1; i <= count; ++i) {
    muster::examples::HelloRequest request;
    request.set_name("call-" + std::to_string(i));
    muster::examples::HelloReply reply;
    grpc::Status s = pool.Call(
        query,
        [&](const std::shared_ptr<grpc::Channel>& channel, const muster::Instance& instance) {
          ++attempts;
          muster::examples::Greeter::Stub stub(channel);
          grpc::ClientContext context;
          context.set_deadline(std::chrono::system_clock::now() + *timeout);
          grpc::Status a = stub.SayHello(&context, request, &reply);
          if (!a.ok() && verbose) {
            std::cout << "  attempt on " << instance.id << " failed: " << muster::FromGrpcStatus(a)
                      << "\n";
          }
          return a;
        },
        pick);
    if (s.ok()) {
      ++answered[reply.instance_id()];
      if (verbose) std::cout << "call " << i << " ok " << reply.instance_id() << std::endl;
    } else {
      ++failed;
      std::cout << "call " << i << " failed: " << muster::FromGrpcStatus(s) << std::endl;
    }
    if (i < count) std::this_thread::sleep_for(*interval);
  }

  std::cout << "greeter_pool_client: " << count << " calls to " << service << " with " << balancer
            << ": " << (count - failed) << " ok, " << failed << " failed, " << attempts
            << " attempts, " << pool.channel_count() << " channels\n";
  for (const auto& [id, n] : answered) std::cout << "  " << id << ": " << n << "\n";
  std::cout.flush();
  return failed == 0 ? 0 : 1;
}
