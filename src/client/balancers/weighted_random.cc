#include "client/balancers/weighted_random.h"

#include "client/balancers/hash.h"

namespace muster {

WeightedRandomBalancer::WeightedRandomBalancer(BalancerOptions options)
    : SnapshotBalancer(std::move(options)) {
  Update(nullptr);
}

std::shared_ptr<const BalancerState> WeightedRandomBalancer::BuildState(InstanceList instances,
                                                                        const BalancerState*) {
  auto state = std::make_shared<State>();
  InitState(*state, std::move(instances));
  const size_t n = state->enabled.size();
  // mass[k]: what is left to place of enabled[k], in units where every
  // bucket holds `total`.
  std::vector<uint64_t> mass(n);
  for (size_t k = 0; k < n; ++k) {
    const uint64_t weight = EffectiveWeight(state->at(state->enabled[k]));
    state->total += weight;
    mass[k] = weight * n;
  }
  const uint64_t total = state->total;
  state->buckets.resize(n);
  std::vector<uint32_t> small, large;  // positions with mass below / at least `total`
  for (uint32_t k = 0; k < n; ++k) (mass[k] < total ? small : large).push_back(k);
  // Each step fills the bucket of a light instance with its own mass and
  // tops it up from a heavy one, which may become light in turn.
  while (!small.empty() && !large.empty()) {
    const uint32_t light = small.back();
    small.pop_back();
    const uint32_t heavy = large.back();
    state->buckets[light] = {mass[light], state->enabled[light], state->enabled[heavy]};
    mass[heavy] -= total - mass[light];
    if (mass[heavy] < total) {
      large.pop_back();
      small.push_back(heavy);
    }
  }
  // What remains has exactly `total` each (in exact arithmetic, both lists
  // end with full buckets).
  for (uint32_t k : large) state->buckets[k] = {total, state->enabled[k], state->enabled[k]};
  for (uint32_t k : small) state->buckets[k] = {total, state->enabled[k], state->enabled[k]};
  return state;
}

absl::StatusOr<Picked> WeightedRandomBalancer::Pick(const PickRequest& request) {
  Snapshot snapshot = Acquire();
  const auto& state = static_cast<const State&>(*snapshot.state);
  if (state.enabled.empty()) return NothingToPick(state);
  // random * n = bucket * 2^64 + rest: the high word is a uniform bucket,
  // and the low word, uniform given the bucket, tosses its coin.
  __extension__ using Uint128 = unsigned __int128;
  const Uint128 product = static_cast<Uint128>(Random()) * state.buckets.size();
  const Bucket& bucket = state.buckets[static_cast<uint64_t>(product >> 64)];
  const uint64_t coin = Below(static_cast<uint64_t>(product), state.total);
  uint32_t index = coin < bucket.keep ? bucket.own : bucket.alias;
  if (IsExcluded(request, state.at(index))) {
    std::vector<uint32_t> allowed = Allowed(state, request.excluded);
    if (allowed.empty()) return NothingToPick(state);
    index = WeightedChoice(state, allowed);
  }
  return MakePicked(std::move(snapshot), index);
}

}  // namespace muster
