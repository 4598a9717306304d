#include "client/balancers/weighted_round_robin.h"

#include <numeric>

namespace muster {
namespace {

// One smooth weighted round robin step over the positions `allowed` lets
// through (all when it is empty); returns the position picked. The best
// value is kept in a register: `current` and `weights` might alias as far as
// the compiler knows, so it would otherwise reload current[best] each time.
uint32_t Step(const std::vector<int64_t>& weights, std::vector<int64_t>& current,
              const std::vector<char>& allowed) {
  const size_t n = weights.size();
  int64_t total = 0;
  int64_t best_value = 0;
  size_t best = n;
  for (size_t k = 0; k < n; ++k) {
    if (!allowed.empty() && !allowed[k]) continue;
    const int64_t value = current[k] + weights[k];
    current[k] = value;
    total += weights[k];
    if (best == n || value > best_value) {
      best = k;
      best_value = value;
    }
  }
  current[best] -= total;
  return static_cast<uint32_t>(best);
}

}  // namespace

WeightedRoundRobinBalancer::WeightedRoundRobinBalancer(BalancerOptions options,
                                                       uint64_t max_cycle_work)
    : SnapshotBalancer(std::move(options)), max_cycle_work_(max_cycle_work) {
  Update(nullptr);
}

std::shared_ptr<const BalancerState> WeightedRoundRobinBalancer::BuildState(
    InstanceList instances, const BalancerState*) {
  auto state = std::make_shared<State>();
  InitState(*state, std::move(instances));
  const size_t n = state->enabled.size();
  int64_t gcd = 0;
  for (uint32_t index : state->enabled) {
    state->weights.push_back(EffectiveWeight(state->at(index)));
    gcd = std::gcd(gcd, state->weights.back());
  }
  uint64_t period = 0;
  for (int64_t& weight : state->weights) {
    weight /= gcd;
    period += static_cast<uint64_t>(weight);
  }
  {
    StepLockHolder lock(state->step_lock);
    state->current.assign(n, 0);
  }
  if (n > 0 && period <= kMaxCycleLength && n * period <= max_cycle_work_) {
    std::vector<int64_t> current(n, 0);
    state->cycle.reserve(period);
    for (uint64_t i = 0; i < period; ++i) state->cycle.push_back(Step(state->weights, current, {}));
  }
  return state;
}

absl::StatusOr<Picked> WeightedRoundRobinBalancer::Pick(const PickRequest& request) {
  Snapshot snapshot = Acquire();
  const auto& state = static_cast<const State&>(*snapshot.state);
  const size_t n = state.enabled.size();
  if (n == 0) return NothingToPick(state);

  if (!state.cycle.empty()) {
    uint64_t turn = snapshot.slot->cursor;
    if (turn >= state.cycle.size()) turn %= state.cycle.size();  // a random start, or an Update
    snapshot.slot->cursor = turn + 1;
    uint32_t index = state.enabled[state.cycle[turn]];
    if (IsExcluded(request, state.at(index))) {
      std::vector<uint32_t> allowed = Allowed(state, request.excluded);
      if (allowed.empty()) return NothingToPick(state);
      index = WeightedChoice(state, allowed);
    }
    return MakePicked(std::move(snapshot), index);
  }

  std::vector<char> allowed;  // empty: everything is allowed
  if (request.excluded) {
    allowed.resize(n);
    bool any = false;
    for (size_t k = 0; k < n; ++k) {
      allowed[k] = !IsExcluded(request, state.at(state.enabled[k]));
      any = any || allowed[k];
    }
    if (!any) return NothingToPick(state);
  }
  uint32_t position;
  {
    StepLockHolder lock(state.step_lock);
    position = Step(state.weights, state.current, allowed);
  }
  return MakePicked(std::move(snapshot), state.enabled[position]);
}

}  // namespace muster
