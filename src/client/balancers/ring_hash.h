// "ring_hash": consistent hashing on a ring with virtual nodes (Karger et
// al.; as Envoy's ring_hash and brpc's ConsistentHashingLoadBalancer).
//
// Update places each enabled instance on a 64-bit ring at the points
// Hash64(id + "#" + i) for i below its number of virtual nodes, which is
// ring_virtual_nodes * weight / 100 (at least 1), so an instance's share of
// the ring, and of keys, follows its weight. A Pick mixes the request's
// hash_key onto the ring and takes the first point at or after it: a bucket
// index on the top bits of the key narrows the search to about one point
// (O(1) expected; two cache misses on a ring too large for the cache).
//
// The points depend only on the instance ids and weights, never on list
// order: the same key goes to the same instance while the set is unchanged,
// in every client. When an instance leaves, only the keys it held move (to
// the next points on the ring); when one joins, it takes keys only from
// others. Spread: with V virtual nodes per instance, shares vary by about
// 1/sqrt(V) (±10% at the default 100).
//
// Excluded instances: the walk continues clockwise to the next point whose
// instance is not excluded, so a key still lands on one stable fallback
// (the instance it would go to if the excluded ones left).
//
// The ring holds at most kMaxRingPoints points; beyond that, the virtual
// nodes are scaled down in proportion (each instance keeps at least one, so
// with more instances than that the ring holds one point per instance).
#pragma once

#include <cstdint>
#include <vector>

#include "client/balancers/snapshot_balancer.h"

namespace muster {

class RingHashBalancer final : public SnapshotBalancer {
 public:
  static constexpr size_t kMaxRingPoints = size_t{1} << 20;  // 16 MiB, plus the index

  // `max_points`: the cap on the ring's size (tests lower it).
  explicit RingHashBalancer(BalancerOptions options, size_t max_points = kMaxRingPoints);

  absl::StatusOr<Picked> Pick(const PickRequest& request) override;
  std::string_view name() const override { return "ring_hash"; }

 private:
  struct Point {
    uint64_t position;  // on the ring
    uint32_t owner;     // index of the instance
  };
  struct State : BalancerState {
    std::vector<Point> ring;  // ascending positions
    // A bucket index over the top bits of the ring: the points of bucket b
    // (position >> bucket_shift == b) are ring[bucket_start[b] ..
    // bucket_start[b + 1]). With at least as many buckets as points, a
    // lookup searches about one point instead of log2(points) levels, most
    // of them cache misses on a large ring.
    std::vector<uint32_t> bucket_start;
    int bucket_shift = 63;
  };

  std::shared_ptr<const BalancerState> BuildState(InstanceList instances,
                                                  const BalancerState* previous) override;

  const size_t max_points_;
};

}  // namespace muster
