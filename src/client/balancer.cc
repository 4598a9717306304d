// NewBalancer and BalancerPolicies: the policies of include/muster/balancer.h
// by name. Each policy lives in balancers/, one per file.
#include "muster/balancer.h"

#include <array>

#include "client/balancers/least_request.h"
#include "client/balancers/maglev.h"
#include "client/balancers/random.h"
#include "client/balancers/ring_hash.h"
#include "client/balancers/round_robin.h"
#include "client/balancers/weighted_random.h"
#include "client/balancers/weighted_round_robin.h"
#include "core/strings.h"

namespace muster {
namespace {

struct Policy {
  std::string_view name;
  std::unique_ptr<Balancer> (*make)(BalancerOptions options);
};

template <typename T>
std::unique_ptr<Balancer> Make(BalancerOptions options) {
  return std::make_unique<T>(std::move(options));
}

constexpr std::array<Policy, 7> kPolicies = {{
    {"random", &Make<RandomBalancer>},
    {"round_robin", &Make<RoundRobinBalancer>},
    {"weighted_random", &Make<WeightedRandomBalancer>},
    {"weighted_round_robin", &Make<WeightedRoundRobinBalancer>},
    {"ring_hash", &Make<RingHashBalancer>},
    {"maglev", &Make<MaglevBalancer>},
    {"least_request", &Make<LeastRequestBalancer>},
}};

// The largest virtual node count per unit of weight 100 that is accepted;
// more buys no balance that the ring's size cap would not take away.
constexpr size_t kMaxRingVirtualNodes = 10000;

absl::Status CheckOptions(std::string_view policy, const BalancerOptions& options) {
  if (policy == "ring_hash" &&
      (options.ring_virtual_nodes == 0 || options.ring_virtual_nodes > kMaxRingVirtualNodes)) {
    return absl::InvalidArgumentError(StrCat("ring_virtual_nodes must be 1..", kMaxRingVirtualNodes,
                                             ", not ", options.ring_virtual_nodes));
  }
  if (policy == "maglev") {
    const uint64_t size = options.maglev_table_size;
    if (size > MaglevBalancer::kMaxTableSize) {
      return absl::InvalidArgumentError(StrCat("maglev_table_size must be at most ",
                                               MaglevBalancer::kMaxTableSize, ", not ", size));
    }
    if (!MaglevBalancer::IsPrime(size)) {
      uint64_t next = size < 2 ? 2 : size + 1;
      while (!MaglevBalancer::IsPrime(next)) ++next;
      return absl::InvalidArgumentError(
          StrCat("maglev_table_size must be a prime, not ", size, " (try ", next, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Balancer>> NewBalancer(std::string_view policy,
                                                      BalancerOptions options) {
  for (const Policy& known : kPolicies) {
    if (known.name != policy) continue;
    if (absl::Status status = CheckOptions(policy, options); !status.ok()) return status;
    return known.make(std::move(options));
  }
  std::string names;
  for (const Policy& known : kPolicies) StrAppend(&names, names.empty() ? "" : ", ", known.name);
  return absl::InvalidArgumentError(
      StrCat("unknown balancer policy \"", policy, "\" (known: ", names, ")"));
}

std::vector<std::string_view> BalancerPolicies() {
  std::vector<std::string_view> names;
  for (const Policy& known : kPolicies) names.push_back(known.name);
  return names;
}

}  // namespace muster
