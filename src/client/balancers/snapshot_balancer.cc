#include "client/balancers/snapshot_balancer.h"

#include <algorithm>
#include <random>

#include "client/balancers/hash.h"
#include "core/limits.h"
#include "core/strings.h"

namespace muster {
namespace {

// Balancer ids: never reused, so a thread's cache entry can never mistake a
// new balancer at a freed address for the old one.
std::atomic<uint64_t> next_balancer_id{1};

const InstanceList& EmptyList() {
  static const InstanceList* const empty =
      new InstanceList(std::make_shared<const std::vector<Instance>>());
  return *empty;
}

}  // namespace

uint32_t EffectiveWeight(const Instance& instance) {
  static constexpr Limits kLimits;
  return std::clamp(instance.weight, kLimits.min_weight, kLimits.max_weight);
}

SnapshotBalancer::SnapshotBalancer(BalancerOptions options)
    : options_(std::move(options)),
      id_(next_balancer_id.fetch_add(1, std::memory_order_relaxed)) {}

void SnapshotBalancer::Update(InstanceList instances) {
  if (instances == nullptr) instances = EmptyList();
  MutexLock update_lock(update_mu_);
  std::shared_ptr<const BalancerState> next = BuildState(std::move(instances), last_built_.get());
  last_built_ = next;
  MutexLock lock(mu_);
  current_ = std::move(next);
  ++current_version_;
  version_.store(current_version_, std::memory_order_release);
}

void SnapshotBalancer::Refresh(ThreadSlot& slot) {
  std::shared_ptr<const BalancerState> state;
  uint64_t version;
  {
    MutexLock lock(mu_);
    state = current_;
    version = current_version_;
  }
  if (slot.owner != id_) {
    slot.owner = id_;
    slot.cursor = Random();
  }
  slot.version = version;
  slot.state = state.get();
  // A control block of this thread's own that owns the state; the list
  // pointer aliases the state's instance vector.
  const std::vector<Instance>* instances = state->instances.get();
  auto owner = std::make_shared<std::shared_ptr<const BalancerState>>(std::move(state));
  slot.list = InstanceList(std::move(owner), instances);
}

uint64_t SnapshotBalancer::ThreadRandom() {
  // splitmix64: one add and a mix per number; full period 2^64; per thread,
  // so no shared state. Seeded once per thread.
  thread_local uint64_t state = [] {
    std::random_device device;
    return (uint64_t{device()} << 32) ^ device();
  }();
  state += 0x9e3779b97f4a7c15ULL;
  return Mix64(state);
}

absl::Status SnapshotBalancer::NothingToPick(const BalancerState& state) {
  if (state.instances->empty()) return absl::UnavailableError("no instances to pick from");
  if (state.enabled.empty()) {
    return absl::UnavailableError(StrCat("all ", state.instances->size(), " instances are disabled"));
  }
  return absl::UnavailableError(
      StrCat("all ", state.enabled.size(), " enabled instances are excluded"));
}

std::vector<uint32_t> SnapshotBalancer::Allowed(
    const BalancerState& state, const std::function<bool(const Instance&)>& excluded) {
  std::vector<uint32_t> allowed;
  allowed.reserve(state.enabled.size());
  for (uint32_t index : state.enabled) {
    if (!excluded || !excluded(state.at(index))) allowed.push_back(index);
  }
  return allowed;
}

uint32_t SnapshotBalancer::WeightedChoice(const BalancerState& state,
                                          const std::vector<uint32_t>& indices) const {
  uint64_t total = 0;
  for (uint32_t index : indices) total += EffectiveWeight(state.at(index));
  uint64_t rest = Below(Random(), total);
  for (uint32_t index : indices) {
    const uint32_t weight = EffectiveWeight(state.at(index));
    if (rest < weight) return index;
    rest -= weight;
  }
  return indices.back();  // not reached: rest < total
}

void SnapshotBalancer::InitState(BalancerState& state, InstanceList instances) {
  state.instances = instances ? std::move(instances) : EmptyList();
  state.enabled.clear();
  for (uint32_t i = 0; i < state.instances->size(); ++i) {
    if ((*state.instances)[i].status == InstanceStatus::kEnabled) state.enabled.push_back(i);
  }
}

}  // namespace muster
