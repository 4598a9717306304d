// "maglev": consistent hashing with a Maglev lookup table (Eisenbud et al.,
// "Maglev: A Fast and Reliable Software Network Load Balancer", NSDI 2016,
// section 3.4; weights as Envoy's maglev_lb).
//
// Update fills a table of M entries (M = maglev_table_size, a prime). Each
// enabled instance has a preference order over the slots, the permutation
// (offset + j * skip) mod M with offset = h1(id) mod M and
// skip = h2(id) mod (M - 1) + 1 from two independent hashes of its id. In
// rounds, each instance in turn takes its next preferred slot that is still
// free, until the table is full. Weights by proportional filling: an
// instance of weight w takes a slot in round t only when t * w reaches its
// target, which grows by the largest weight each time it takes one, so
// instances hold slots in proportion to their weights. A Pick is one table
// read at the request's mixed hash_key (O(1)).
//
// Properties (the paper's): balance is near perfect, every instance holds
// within one slot of M * w / sum(w) in the unweighted case; when an
// instance leaves, its slots go to others, and a few other slots change
// owner too (the paper's "minimal disruption" is approximate: measured at
// the default M = 65537, 0.2% of the other keys move with 10 instances, 0.6%
// with 100). Instances are filled in id order, so the table does not
// depend on the order of the list. M should be well above the number of
// instances (the paper suggests M > 100 n); with more instances than slots,
// M is raised to the next prime at or above their number.
//
// Excluded instances: the lookup continues to the following slots until one
// whose instance is not excluded, so a key still lands on a stable fallback.
#pragma once

#include <cstdint>
#include <vector>

#include "client/balancers/snapshot_balancer.h"

namespace muster {

class MaglevBalancer final : public SnapshotBalancer {
 public:
  static constexpr uint64_t kMaxTableSize = 5000011;  // a prime; 20 MB of table

  // options.maglev_table_size must be a prime in [2, kMaxTableSize]
  // (NewBalancer checks).
  explicit MaglevBalancer(BalancerOptions options);

  absl::StatusOr<Picked> Pick(const PickRequest& request) override;
  std::string_view name() const override { return "maglev"; }

  static bool IsPrime(uint64_t n);

 private:
  struct State : BalancerState {
    std::vector<uint32_t> table;  // M entries: the index of the instance owning each slot
  };

  std::shared_ptr<const BalancerState> BuildState(InstanceList instances,
                                                  const BalancerState* previous) override;
};

}  // namespace muster
