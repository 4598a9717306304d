#include "client/balancers/maglev.h"

#include <algorithm>

#include "client/balancers/hash.h"

namespace muster {
namespace {

// Seeds of the two hashes of an instance id (offset and skip); any two
// distinct values give independent hashes.
constexpr uint64_t kOffsetSeed = 0x6d61676c65763031ULL;  // "maglev01"
constexpr uint64_t kSkipSeed = 0x6d61676c65763032ULL;    // "maglev02"

constexpr uint32_t kFree = UINT32_MAX;

}  // namespace

bool MaglevBalancer::IsPrime(uint64_t n) {
  if (n < 2) return false;
  for (uint64_t d = 2; d * d <= n; ++d) {
    if (n % d == 0) return false;
  }
  return true;
}

MaglevBalancer::MaglevBalancer(BalancerOptions options) : SnapshotBalancer(std::move(options)) {
  Update(nullptr);
}

std::shared_ptr<const BalancerState> MaglevBalancer::BuildState(InstanceList instances,
                                                                const BalancerState*) {
  auto state = std::make_shared<State>();
  InitState(*state, std::move(instances));
  if (state->enabled.empty()) return state;

  // Every instance takes a slot in the first round, so with at least as many
  // slots as instances none is left without.
  uint64_t size = options().maglev_table_size;
  while (size < state->enabled.size() || !IsPrime(size)) ++size;
  struct Filler {
    uint32_t index;     // the instance
    uint64_t weight;
    uint64_t target;    // takes a slot in round t when t * weight >= target
    uint64_t position;  // its next preferred slot: (offset + j * skip) mod M
    uint64_t skip;
  };
  std::vector<Filler> fillers;
  fillers.reserve(state->enabled.size());
  uint64_t max_weight = 0;
  for (uint32_t index : state->enabled) {
    const Instance& instance = state->at(index);
    const uint64_t offset = Hash64(instance.id, kOffsetSeed) % size;
    const uint64_t skip = Hash64(instance.id, kSkipSeed) % (size - 1) + 1;
    const uint64_t weight = EffectiveWeight(instance);
    fillers.push_back({index, weight, 0, offset, skip});
    max_weight = std::max(max_weight, weight);
  }
  std::sort(fillers.begin(), fillers.end(), [&](const Filler& a, const Filler& b) {
    const std::string& id_a = state->at(a.index).id;
    const std::string& id_b = state->at(b.index).id;
    return id_a != id_b ? id_a < id_b : a.index < b.index;
  });

  state->table.assign(size, kFree);
  uint64_t filled = 0;
  for (uint64_t round = 1; filled < size; ++round) {
    for (Filler& filler : fillers) {
      if (round * filler.weight < filler.target) continue;
      filler.target += max_weight;
      while (state->table[filler.position] != kFree) {
        filler.position += filler.skip;
        if (filler.position >= size) filler.position -= size;
      }
      state->table[filler.position] = filler.index;
      filler.position += filler.skip;
      if (filler.position >= size) filler.position -= size;
      if (++filled == size) break;
    }
  }
  return state;
}

absl::StatusOr<Picked> MaglevBalancer::Pick(const PickRequest& request) {
  Snapshot snapshot = Acquire();
  const auto& state = static_cast<const State&>(*snapshot.state);
  if (state.enabled.empty()) return NothingToPick(state);
  const size_t size = state.table.size();
  const size_t slot = Below(Mix64(request.hash_key), size);
  const uint32_t index = state.table[slot];
  if (IsExcluded(request, state.at(index))) {
    // The following slots, asking about each instance once.
    std::vector<char> asked(state.instances->size(), 0);
    asked[index] = 1;
    size_t distinct = 1;
    for (size_t step = 1; distinct < state.enabled.size() && step < size; ++step) {
      const uint32_t candidate = state.table[(slot + step) % size];
      if (asked[candidate]) continue;
      asked[candidate] = 1;
      ++distinct;
      if (!IsExcluded(request, state.at(candidate))) {
        return MakePicked(std::move(snapshot), candidate);
      }
    }
    return NothingToPick(state);
  }
  return MakePicked(std::move(snapshot), index);
}

}  // namespace muster
