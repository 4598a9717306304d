#include "client/balancers/random.h"

#include "client/balancers/hash.h"

namespace muster {

RandomBalancer::RandomBalancer(BalancerOptions options) : SnapshotBalancer(std::move(options)) {
  Update(nullptr);
}

std::shared_ptr<const BalancerState> RandomBalancer::BuildState(InstanceList instances,
                                                                const BalancerState*) {
  auto state = std::make_shared<BalancerState>();
  InitState(*state, std::move(instances));
  return state;
}

absl::StatusOr<Picked> RandomBalancer::Pick(const PickRequest& request) {
  Snapshot snapshot = Acquire();
  const BalancerState& state = *snapshot.state;
  if (state.enabled.empty()) return NothingToPick(state);
  uint32_t index = state.enabled[Below(Random(), state.enabled.size())];
  if (IsExcluded(request, state.at(index))) {
    std::vector<uint32_t> allowed = Allowed(state, request.excluded);
    if (allowed.empty()) return NothingToPick(state);
    index = allowed[Below(Random(), allowed.size())];
  }
  return MakePicked(std::move(snapshot), index);
}

}  // namespace muster
