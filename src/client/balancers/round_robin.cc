#include "client/balancers/round_robin.h"

namespace muster {

RoundRobinBalancer::RoundRobinBalancer(BalancerOptions options)
    : SnapshotBalancer(std::move(options)) {
  Update(nullptr);
}

std::shared_ptr<const BalancerState> RoundRobinBalancer::BuildState(InstanceList instances,
                                                                    const BalancerState*) {
  auto state = std::make_shared<BalancerState>();
  InitState(*state, std::move(instances));
  return state;
}

absl::StatusOr<Picked> RoundRobinBalancer::Pick(const PickRequest& request) {
  Snapshot snapshot = Acquire();
  const BalancerState& state = *snapshot.state;
  const size_t n = state.enabled.size();
  if (n == 0) return NothingToPick(state);
  uint64_t position = snapshot.slot->cursor;
  if (position >= n) position %= n;  // after an Update, or the random start
  uint32_t index = state.enabled[position];
  snapshot.slot->cursor = position + 1;
  if (IsExcluded(request, state.at(index))) {
    size_t step = 1;
    for (; step < n; ++step) {
      size_t next = position + step < n ? position + step : position + step - n;
      index = state.enabled[next];
      if (!IsExcluded(request, state.at(index))) break;
    }
    if (step == n) return NothingToPick(state);
    // The predicate may have used another balancer that took this entry.
    if (snapshot.slot->owner == id()) snapshot.slot->cursor = position + step + 1;
  }
  return MakePicked(std::move(snapshot), index);
}

}  // namespace muster
