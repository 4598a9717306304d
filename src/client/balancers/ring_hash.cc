#include "client/balancers/ring_hash.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <string>

#include "client/balancers/hash.h"
#include "core/strings.h"

namespace muster {

RingHashBalancer::RingHashBalancer(BalancerOptions options, size_t max_points)
    : SnapshotBalancer(std::move(options)), max_points_(max_points) {
  Update(nullptr);
}

std::shared_ptr<const BalancerState> RingHashBalancer::BuildState(InstanceList instances,
                                                                  const BalancerState*) {
  auto state = std::make_shared<State>();
  InitState(*state, std::move(instances));
  if (state->enabled.empty()) return state;

  // Virtual nodes per enabled instance: proportional to weight, 100 being
  // the default weight.
  std::vector<uint64_t> nodes;
  nodes.reserve(state->enabled.size());
  uint64_t total = 0;
  for (uint32_t index : state->enabled) {
    const double exact = static_cast<double>(options().ring_virtual_nodes) *
                         EffectiveWeight(state->at(index)) / 100.0;
    nodes.push_back(std::max<uint64_t>(1, static_cast<uint64_t>(std::llround(exact))));
    total += nodes.back();
  }
  if (total > max_points_) {
    const double scale = static_cast<double>(max_points_) / static_cast<double>(total);
    total = 0;
    for (uint64_t& count : nodes) {
      count = std::max<uint64_t>(1, static_cast<uint64_t>(static_cast<double>(count) * scale));
      total += count;
    }
  }

  std::vector<Point>& ring = state->ring;
  ring.reserve(total);
  std::string name;
  for (size_t k = 0; k < state->enabled.size(); ++k) {
    const uint32_t index = state->enabled[k];
    for (uint64_t i = 0; i < nodes[k]; ++i) {
      name = StrCat(state->at(index).id, "#", i);
      ring.push_back({Hash64(name, 0), index});
    }
  }
  // Ties (equal positions) are broken by id, so the ring never depends on
  // the order of the list.
  std::sort(ring.begin(), ring.end(), [&](const Point& a, const Point& b) {
    if (a.position != b.position) return a.position < b.position;
    return state->at(a.owner).id < state->at(b.owner).id;
  });

  // The bucket index: 2^bits buckets, at least as many as points.
  const int bits = static_cast<int>(std::bit_width(ring.size()));
  state->bucket_shift = 64 - bits;
  const size_t buckets = size_t{1} << bits;
  state->bucket_start.resize(buckets + 1);
  size_t k = 0;
  for (size_t bucket = 0; bucket < buckets; ++bucket) {
    while (k < ring.size() && (ring[k].position >> state->bucket_shift) < bucket) ++k;
    state->bucket_start[bucket] = static_cast<uint32_t>(k);
  }
  state->bucket_start[buckets] = static_cast<uint32_t>(ring.size());
  return state;
}

absl::StatusOr<Picked> RingHashBalancer::Pick(const PickRequest& request) {
  Snapshot snapshot = Acquire();
  const auto& state = static_cast<const State&>(*snapshot.state);
  if (state.enabled.empty()) return NothingToPick(state);
  const std::vector<Point>& ring = state.ring;
  const uint64_t key = Mix64(request.hash_key);

  // The first point at or after the key is among the points of the key's
  // bucket, or else the first point of a later bucket (where the bucket's
  // range ends). Within the bucket, a branch-free binary search: on random
  // keys a branch per level would be mispredicted half the time.
  const uint64_t bucket = key >> state.bucket_shift;
  const Point* base = ring.data() + state.bucket_start[bucket];
  size_t count = state.bucket_start[bucket + 1] - state.bucket_start[bucket];
  if (count > 0) {
    while (count > 1) {
      const size_t half = count / 2;
      base = base[half].position < key ? base + half : base;
      count -= half;
    }
    base += base->position < key;
  }
  size_t k = static_cast<size_t>(base - ring.data());
  if (k == ring.size()) k = 0;  // past the last point: wrap to the first

  const uint32_t index = ring[k].owner;
  if (IsExcluded(request, state.at(index))) {
    // Walk clockwise, asking about each instance once.
    std::vector<char> asked(state.instances->size(), 0);
    asked[index] = 1;
    size_t distinct = 1;
    for (size_t step = 1; distinct < state.enabled.size() && step < ring.size(); ++step) {
      const uint32_t candidate = ring[(k + step) % ring.size()].owner;
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
