// pick_bench: the cost of Balancer::Pick (and Done, for least_request) per
// policy, at 10, 100 and 1000 instances, on 1, 2 and 4 threads sharing one
// balancer, as the threads of an application share a Discovery.
//
// With UseRealTime, "Time" is wall time divided by the picks of all threads
// (the inverse of items_per_second); "CPU" is CPU time per pick, the cost of
// one pick, which stays flat across thread counts when threads do not
// contend. docs/benchmarks.md has the figures and how to read them.
// Instances have weights 100, 200 and 300 in turn; hashing policies get a
// new key per pick. "weighted_round_robin/live" forces the lock-guarded live
// step that weights with a long smooth cycle fall back to.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "client/balancers/weighted_round_robin.h"
#include "muster/balancer.h"

namespace {

using muster::Balancer;
using muster::Instance;

std::shared_ptr<const std::vector<Instance>> MakeInstances(int n) {
  std::vector<Instance> instances;
  for (int i = 0; i < n; ++i) {
    Instance instance;
    instance.service = "bench";
    instance.id = "instance-" + std::to_string(i);
    instance.address = "10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ":8080";
    instance.weight = 100 * (1 + i % 3);
    instances.push_back(std::move(instance));
  }
  return std::make_shared<const std::vector<Instance>>(std::move(instances));
}

void BM_Pick(benchmark::State& state, Balancer* balancer) {
  // Distinct keys per thread, spread by the golden-ratio step.
  uint64_t key = static_cast<uint64_t>(state.thread_index()) << 40;
  muster::PickRequest request;
  for (auto _ : state) {
    request.hash_key = (key++) * 0x9e3779b97f4a7c15ULL;
    auto picked = balancer->Pick(request);
    if (!picked.ok()) {
      state.SkipWithError("Pick failed");
      break;
    }
    benchmark::DoNotOptimize(&picked->instance());
    balancer->Done(*picked, true);
  }
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  // Balancers live for the whole run; benchmarks only read them.
  std::vector<std::unique_ptr<Balancer>> balancers;
  auto add = [&](const std::string& name, std::unique_ptr<Balancer> balancer, int n) {
    balancer->Update(MakeInstances(n));
    benchmark::RegisterBenchmark((name + "/" + std::to_string(n)).c_str(), BM_Pick, balancer.get())
        ->Threads(1)
        ->Threads(2)
        ->Threads(4)
        ->UseRealTime();
    balancers.push_back(std::move(balancer));
  };
  for (std::string_view policy : muster::BalancerPolicies()) {
    for (int n : {10, 100, 1000}) add(std::string(policy), std::move(*muster::NewBalancer(policy)), n);
  }
  for (int n : {10, 100, 1000}) {
    add("weighted_round_robin/live",
        std::make_unique<muster::WeightedRoundRobinBalancer>(muster::BalancerOptions{}, 0), n);
  }

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
