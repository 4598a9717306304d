// muster::Balancer: client-side load balancing over a service's instances.
//
// Policies, chosen by name with NewBalancer:
//   "random"            uniform among enabled instances
//   "round_robin"       each in turn
//   "weighted_random"   probability proportional to weight
//   "weighted_round_robin"  smooth weighted round robin (as nginx): over any
//                       window of sum(weights) picks, each instance is picked
//                       exactly weight times, evenly spread
//   "ring_hash"         consistent hashing on a ring with virtual nodes
//   "maglev"            consistent hashing with a Maglev lookup table
//   "least_request"     power of two choices on in-flight calls (uses Done)
// Disabled instances are never picked; weights (1..10000) are respected by the
// weighted and hashing policies.
//
// Example:
//   auto lb = muster::NewBalancer("round_robin");
//   (*lb)->Update(std::make_shared<const std::vector<muster::Instance>>(list));
//   auto picked = (*lb)->Pick({});
//   if (picked.ok()) { call(picked->instance()); (*lb)->Done(*picked, ok); }
//
// Thread-safe: Pick and Done may run on many threads at once and take no
// global lock; Update publishes a new immutable snapshot that later Picks see.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "muster/instance.h"

namespace muster {

using InstanceList = std::shared_ptr<const std::vector<Instance>>;

struct PickRequest {
  // For the hashing policies: requests with the same key go to the same
  // instance while the set is unchanged. Ignored by the others.
  uint64_t hash_key = 0;
  // Instances to avoid (failed in this call, or ejected); may be empty.
  std::function<bool(const Instance&)> excluded;
};

// A picked instance. Keeps the snapshot it came from alive, so the reference
// stays valid while the Picked lives.
class Picked {
 public:
  Picked(InstanceList list, size_t index) : list_(std::move(list)), index_(index) {}
  const Instance& instance() const { return (*list_)[index_]; }
  size_t index() const { return index_; }  // position in the list given to Update
  const InstanceList& list() const { return list_; }

 private:
  InstanceList list_;
  size_t index_;
};

class Balancer {
 public:
  virtual ~Balancer() = default;

  // Replaces the instances to pick from.
  virtual void Update(InstanceList instances) = 0;

  // Picks an instance. Unavailable when there is none to pick (no instances,
  // all disabled, or all excluded), with a message that says which.
  virtual absl::StatusOr<Picked> Pick(const PickRequest& request) = 0;

  // Reports that a call on `picked` ended. Only least_request uses it; every
  // Pick should be followed by one Done.
  virtual void Done(const Picked& picked, bool success) {
    (void)picked;
    (void)success;
  }

  virtual std::string_view name() const = 0;
};

struct BalancerOptions {
  // Source of randomness; tests inject a deterministic one. Default: a fast
  // per-thread generator seeded from std::random_device.
  std::function<uint64_t()> random;
  size_t ring_virtual_nodes = 100;  // ring_hash: virtual nodes per unit of weight 100
  size_t maglev_table_size = 65537; // maglev: a prime well above the instance count
};

// InvalidArgument for an unknown policy name.
absl::StatusOr<std::unique_ptr<Balancer>> NewBalancer(std::string_view policy,
                                                      BalancerOptions options = {});

// The policy names NewBalancer knows.
std::vector<std::string_view> BalancerPolicies();

}  // namespace muster
