// "random": each pick is uniform among the enabled instances, ignoring
// weights.
//
// Pick draws one number and indexes the enabled instances precomputed at
// Update; nothing is shared between threads but the snapshot. When the drawn
// instance is excluded, the pick is uniform among those that are not.
#pragma once

#include "client/balancers/snapshot_balancer.h"

namespace muster {

class RandomBalancer final : public SnapshotBalancer {
 public:
  explicit RandomBalancer(BalancerOptions options);

  absl::StatusOr<Picked> Pick(const PickRequest& request) override;
  std::string_view name() const override { return "random"; }

 private:
  std::shared_ptr<const BalancerState> BuildState(InstanceList instances,
                                                  const BalancerState* previous) override;
};

}  // namespace muster
