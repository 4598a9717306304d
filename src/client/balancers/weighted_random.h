// "weighted_random": each pick chooses an enabled instance with probability
// weight / (sum of enabled weights).
//
// Walker's alias method (Vose's construction, in integers so the
// probabilities are exact): Update splits the enabled instances' weights
// into n buckets of equal mass, each holding at most two instances (its own
// and an "alias"). A Pick draws one 64-bit number: its high part chooses a
// bucket, its low part tosses the coin between the bucket's two instances.
// O(1) per pick, whatever the number of instances; nothing shared is
// written. When the drawn instance is excluded, the pick is weighted among
// those that are not (a linear pass).
#pragma once

#include <cstdint>
#include <vector>

#include "client/balancers/snapshot_balancer.h"

namespace muster {

class WeightedRandomBalancer final : public SnapshotBalancer {
 public:
  explicit WeightedRandomBalancer(BalancerOptions options);

  absl::StatusOr<Picked> Pick(const PickRequest& request) override;
  std::string_view name() const override { return "weighted_random"; }

 private:
  // One of n buckets, each of mass `total` (the sum of the enabled weights):
  // a coin below `keep` (out of `total`) picks `own`, else `alias`. Masses
  // are weights times n, so that bucket i's share of instance j sums, over
  // all buckets, to weight(j) * n.
  struct Bucket {
    uint64_t keep;
    uint32_t own;    // instance index
    uint32_t alias;  // instance index
  };
  struct State : BalancerState {
    std::vector<Bucket> buckets;  // one per enabled instance
    uint64_t total = 0;
  };

  std::shared_ptr<const BalancerState> BuildState(InstanceList instances,
                                                  const BalancerState* previous) override;
};

}  // namespace muster
