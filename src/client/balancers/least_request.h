// "least_request": the power of two random choices (Mitzenmacher) on
// in-flight calls, as Envoy's least_request with its default choice_count 2.
//
// Each instance has an in-flight counter: Pick increments the picked
// instance's, Done decrements it. A Pick samples two distinct enabled
// instances at random and takes the less loaded, load being
// (in_flight + 1) / weight: with equal weights, simply the one with fewer
// calls in flight; a heavier instance is allowed proportionally more. Ties
// go to the first sample (itself random). Two samples avoid both the herd
// behaviour of "globally least loaded" (every client piling onto the same
// idle instance) and a scan of all instances; nothing is locked.
//
// Counters belong to instance ids, not to lists: an Update keeps the count
// of every instance that stays (matched by id) and starts new ones at 0. A
// Done for a Picked from an older list finds the counter by id; if that
// instance has left meanwhile, it is dropped. A Done from before an
// instance left and came back would take its new count below 0: that
// decrement is undone at once, so a count is below 0 only for that instant.
// Each counter sits on its own cache line. The counters are shared by every
// thread that picks (that is what gives the balancer its view of all calls in
// flight), so threads picking at full speed move their cache lines between
// cores: docs/benchmarks.md measures it.
//
// Excluded instances: when one sample is excluded the other is taken; when
// both are, the least loaded of the instances that are not excluded.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "client/balancers/snapshot_balancer.h"

namespace muster {

class LeastRequestBalancer final : public SnapshotBalancer {
 public:
  explicit LeastRequestBalancer(BalancerOptions options);

  absl::StatusOr<Picked> Pick(const PickRequest& request) override;
  void Done(const Picked& picked, bool success) override;
  std::string_view name() const override { return "least_request"; }

  // Calls in flight on the instance with this id in the current list; 0 when
  // there is none. For tests and diagnostics.
  int64_t InFlight(std::string_view id);

 private:
  struct alignas(64) Counter {
    std::atomic<int64_t> in_flight{0};
  };
  struct State : BalancerState {
    // Per instance (disabled ones too, so that a count survives a disable
    // and re-enable), by index in the list.
    std::vector<std::shared_ptr<Counter>> owned;
    std::vector<Counter*> counters;
    std::vector<uint32_t> weights;
    // First index of each id; the keys view the ids in *instances.
    std::unordered_map<std::string_view, uint32_t> by_id;
  };

  std::shared_ptr<const BalancerState> BuildState(InstanceList instances,
                                                  const BalancerState* previous) override;
};

}  // namespace muster
