// "round_robin": the enabled instances each in turn, ignoring weights.
//
// As apache/brpc's RoundRobinLoadBalancer, the position is per thread (kept
// in the thread's snapshot cache entry), not one atomic counter that every
// Pick on every core would write: each thread walks the enabled instances in
// list order from a random start, so a thread that makes n picks over n
// enabled instances hits each exactly once, and many threads together spread
// evenly. A Pick writes nothing shared. When the instance in turn is
// excluded, the next one in order that is not excluded is picked and the
// walk continues after it. An Update keeps each thread's position (reduced
// modulo the new number of enabled instances).
#pragma once

#include "client/balancers/snapshot_balancer.h"

namespace muster {

class RoundRobinBalancer final : public SnapshotBalancer {
 public:
  explicit RoundRobinBalancer(BalancerOptions options);

  absl::StatusOr<Picked> Pick(const PickRequest& request) override;
  std::string_view name() const override { return "round_robin"; }

 private:
  std::shared_ptr<const BalancerState> BuildState(InstanceList instances,
                                                  const BalancerState* previous) override;
};

}  // namespace muster
