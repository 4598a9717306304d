// Helpers shared by the balancer tests: instance lists, deterministic
// randomness, and counting where picks land.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "muster/balancer.h"

namespace muster::testing {

inline Instance MakeInstance(std::string id, uint32_t weight = kDefaultWeight,
                             InstanceStatus status = InstanceStatus::kEnabled) {
  Instance instance;
  instance.service = "orders";
  instance.id = id;
  instance.address = "10.0.0.1:80";
  instance.weight = weight;
  instance.status = status;
  return instance;
}

inline InstanceList ListOf(std::vector<Instance> instances) {
  return std::make_shared<const std::vector<Instance>>(std::move(instances));
}

// n enabled instances "i0".."i{n-1}" of weight 100.
inline InstanceList Uniform(size_t n, const std::string& prefix = "i") {
  std::vector<Instance> instances;
  for (size_t i = 0; i < n; ++i) instances.push_back(MakeInstance(prefix + std::to_string(i)));
  return ListOf(std::move(instances));
}

// A reproducible random source for BalancerOptions::random (not thread-safe:
// for single-threaded tests).
inline std::function<uint64_t()> SeededRandom(uint64_t seed) {
  auto engine = std::make_shared<std::mt19937_64>(seed);
  return [engine] { return (*engine)(); };
}

// Requests and options. (GCC warns about designated initializers that leave
// members out, so the tests build them with these.)
inline PickRequest Key(uint64_t key) {
  PickRequest request;
  request.hash_key = key;
  return request;
}
inline PickRequest Excluding(std::function<bool(const Instance&)> excluded, uint64_t key = 0) {
  PickRequest request;
  request.hash_key = key;
  request.excluded = std::move(excluded);
  return request;
}
inline BalancerOptions RandomFrom(std::function<uint64_t()> random) {
  BalancerOptions options;
  options.random = std::move(random);
  return options;
}
inline BalancerOptions VirtualNodes(size_t nodes) {
  BalancerOptions options;
  options.ring_virtual_nodes = nodes;
  return options;
}
inline BalancerOptions TableSize(size_t size) {
  BalancerOptions options;
  options.maglev_table_size = size;
  return options;
}

inline std::unique_ptr<Balancer> MustNew(std::string_view policy, BalancerOptions options = {}) {
  auto balancer = NewBalancer(policy, std::move(options));
  EXPECT_TRUE(balancer.ok()) << balancer.status();
  return balancer.ok() ? std::move(*balancer) : nullptr;
}

// Picks `picks` times (hash_key = pick number * a large odd constant when
// `keyed`), calling Done at once, and counts the picks per instance id.
inline std::map<std::string, int> CountPicks(Balancer& balancer, int picks, bool keyed = false) {
  std::map<std::string, int> counts;
  for (int i = 0; i < picks; ++i) {
    PickRequest request;
    if (keyed) request.hash_key = uint64_t(i) * 0x9e3779b97f4a7c15ULL;
    auto picked = balancer.Pick(request);
    if (!picked.ok()) {
      ADD_FAILURE() << picked.status();
      break;
    }
    ++counts[picked->instance().id];
    balancer.Done(*picked, true);
  }
  return counts;
}

// The instance id each of `keys` hash keys goes to.
inline std::vector<std::string> Placement(Balancer& balancer, size_t keys) {
  std::vector<std::string> ids;
  ids.reserve(keys);
  for (size_t key = 0; key < keys; ++key) {
    auto picked = balancer.Pick(Key(key));
    ids.push_back(picked.ok() ? picked->instance().id : "<" + picked.status().ToString() + ">");
  }
  return ids;
}

}  // namespace muster::testing
