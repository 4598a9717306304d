// Uses the installed gRPC channel pool (muster::muster_grpc) the way an
// application would: <muster/muster.h> and <muster/grpc_channel_pool.h>.
#include <cstdio>
#include <memory>

#include <muster/grpc_channel_pool.h>
#include <muster/muster.h>

int main() {
  std::unique_ptr<muster::Registry> registry = muster::NewMemoryRegistry();
  muster::Instance in;
  in.service = "greeter";
  in.id = "greeter-1";
  in.address = "127.0.0.1:1";
  if (!registry->Register(in, muster::CallOptions{}).ok()) return 1;
  muster::Discovery discovery(registry.get(), muster::DiscoveryOptions{});
  muster::GrpcChannelPoolOptions options;
  options.connect_at_once = false;
  muster::GrpcChannelPool pool(&discovery, options);
  muster::ServiceQuery greeter;
  greeter.service = "greeter";
  if (!pool.Follow(greeter).ok() || pool.channel_count() != 1) return 2;
  // No instance of an unknown service: UNAVAILABLE before any attempt.
  muster::ServiceQuery nobody;
  nobody.service = "nobody";
  grpc::Status s = pool.Call(nobody, [](const std::shared_ptr<grpc::Channel>&,
                                        const muster::Instance&) { return grpc::Status::OK; });
  if (s.error_code() != grpc::StatusCode::UNAVAILABLE) return 3;
  std::puts("consumer_grpc: ok");
  return 0;
}
