#include "client/balancers/least_request.h"

#include "client/balancers/hash.h"

namespace muster {
namespace {

// True when the instance with (load_a in flight, weight_a) is strictly less
// loaded than the other: (load_a + 1) / weight_a < (load_b + 1) / weight_b.
bool LessLoaded(int64_t load_a, uint32_t weight_a, int64_t load_b, uint32_t weight_b) {
  return (load_a + 1) * int64_t{weight_b} < (load_b + 1) * int64_t{weight_a};
}

}  // namespace

LeastRequestBalancer::LeastRequestBalancer(BalancerOptions options)
    : SnapshotBalancer(std::move(options)) {
  Update(nullptr);
}

std::shared_ptr<const BalancerState> LeastRequestBalancer::BuildState(
    InstanceList instances, const BalancerState* previous) {
  auto state = std::make_shared<State>();
  InitState(*state, std::move(instances));
  const auto* before = static_cast<const State*>(previous);
  const size_t size = state->instances->size();
  state->owned.reserve(size);
  state->counters.reserve(size);
  state->weights.reserve(size);
  for (uint32_t i = 0; i < size; ++i) {
    const Instance& instance = state->at(i);
    const bool first = state->by_id.emplace(instance.id, i).second;
    std::shared_ptr<Counter> counter;
    if (first && before != nullptr) {
      auto it = before->by_id.find(instance.id);
      if (it != before->by_id.end()) counter = before->owned[it->second];
    }
    if (counter == nullptr) counter = std::make_shared<Counter>();
    state->counters.push_back(counter.get());
    state->owned.push_back(std::move(counter));
    state->weights.push_back(EffectiveWeight(instance));
  }
  return state;
}

absl::StatusOr<Picked> LeastRequestBalancer::Pick(const PickRequest& request) {
  Snapshot snapshot = Acquire();
  const auto& state = static_cast<const State&>(*snapshot.state);
  const size_t n = state.enabled.size();
  if (n == 0) return NothingToPick(state);

  uint32_t index;
  if (n == 1) {
    index = state.enabled[0];
    if (IsExcluded(request, state.at(index))) return NothingToPick(state);
  } else {
    // Two distinct samples from one random number: the first from its high
    // bits, the second (among the other n - 1) from its low 32 bits.
    const uint64_t random = Random();
    const size_t first = Below(random, n);
    size_t second = static_cast<size_t>(((random & 0xffffffffULL) * (n - 1)) >> 32);
    if (second >= first) ++second;
    const uint32_t a = state.enabled[first];
    const uint32_t b = state.enabled[second];
    const bool b_better =
        LessLoaded(state.counters[b]->in_flight.load(std::memory_order_relaxed), state.weights[b],
                   state.counters[a]->in_flight.load(std::memory_order_relaxed), state.weights[a]);
    index = b_better ? b : a;
    if (IsExcluded(request, state.at(index))) {
      const uint32_t other = b_better ? a : b;
      if (!IsExcluded(request, state.at(other))) {
        index = other;
      } else {
        std::vector<uint32_t> allowed = Allowed(state, request.excluded);
        if (allowed.empty()) return NothingToPick(state);
        index = allowed[0];
        int64_t best_load = state.counters[index]->in_flight.load(std::memory_order_relaxed);
        for (uint32_t candidate : allowed) {
          const int64_t load = state.counters[candidate]->in_flight.load(std::memory_order_relaxed);
          if (LessLoaded(load, state.weights[candidate], best_load, state.weights[index])) {
            index = candidate;
            best_load = load;
          }
        }
      }
    }
  }
  state.counters[index]->in_flight.fetch_add(1, std::memory_order_relaxed);
  return MakePicked(std::move(snapshot), index);
}

void LeastRequestBalancer::Done(const Picked& picked, bool) {
  const auto& state = static_cast<const State&>(*CurrentSlot().state);
  Counter* counter = nullptr;
  if (picked.list().get() == state.instances.get()) {
    if (picked.index() < state.counters.size()) counter = state.counters[picked.index()];
  } else if (picked.list() != nullptr && picked.index() < picked.list()->size()) {
    auto it = state.by_id.find(picked.instance().id);
    if (it != state.by_id.end()) counter = state.counters[it->second];
  }
  if (counter == nullptr) return;
  // One read-modify-write in the common case; a load and a compare-exchange
  // would move the cache line twice when another core holds it. Below zero
  // only after a Done from before the instance left and came back: undone
  // at once.
  if (counter->in_flight.fetch_sub(1, std::memory_order_relaxed) <= 0) {
    counter->in_flight.fetch_add(1, std::memory_order_relaxed);
  }
}

int64_t LeastRequestBalancer::InFlight(std::string_view id) {
  const auto& state = static_cast<const State&>(*CurrentSlot().state);
  auto it = state.by_id.find(id);
  if (it == state.by_id.end()) return 0;
  return state.counters[it->second]->in_flight.load(std::memory_order_relaxed);
}

}  // namespace muster
