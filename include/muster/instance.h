// The instance model: what a service instance is, as the registry stores it
// and the SDK hands it out. Shared by musterd, musterctl and libmuster.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace muster {

// Whether an instance may be handed out. A disabled instance stays registered
// (and keeps its lease) but discovery leaves it out.
enum class InstanceStatus { kEnabled, kDisabled };

// Derived health: from the lease alone it is always passing while registered;
// active checks may lower it to the worst of their states. Ordered from best
// to worst.
enum class Health { kPassing, kWarning, kCritical };

// How a check finds out whether an instance serves. kTtl without a `ttl` of
// its own is the lease itself (heartbeats); with one it is a reported check,
// whose state the instance reports (Consul's TTL check); the others are run
// by musterd.
enum class CheckType { kTtl, kHttp, kTcp, kGrpc, kScript };

std::string_view ToString(InstanceStatus status);
std::string_view ToString(Health health);
std::string_view ToString(CheckType type);
std::optional<InstanceStatus> ParseInstanceStatus(std::string_view text);
std::optional<Health> ParseHealth(std::string_view text);
std::optional<CheckType> ParseCheckType(std::string_view text);

// One health check of an instance, as registered ("checks" in JSON; every
// field is described in docs/api.md). The spec fields come from the
// registration; `status` and `output` are the registry's.
struct Check {
  std::string id;
  CheckType type = CheckType::kTtl;
  // http: an http:// or https:// URL, or a path on the instance's address
  // ("" is "/"). tcp, grpc: host:port ("" is the instance's address).
  // script: the program to run. ttl: unused.
  std::string target;
  std::chrono::milliseconds interval{std::chrono::seconds(10)};
  std::chrono::milliseconds timeout{std::chrono::seconds(2)};
  // Consecutive results needed to move to a better (rise) or worse (fall)
  // state. The first result of a check that never ran decides at once.
  uint32_t rise = 2;
  uint32_t fall = 3;
  // Deregister the instance once this check has been critical this long
  // (0: never).
  std::chrono::milliseconds deregister_critical_after{0};
  // http only.
  std::string method = "GET";
  std::map<std::string, std::string> headers;
  bool tls_skip_verify = false;
  // grpc only: the service name asked for ("" is the whole server).
  std::string grpc_service;
  // script only: arguments after the program.
  std::vector<std::string> args;
  // ttl only: 0 makes the check the instance's lease (passing while the
  // lease holds). Above 0 the check is reported: its state is what the
  // instance last reported (starting from the registration's `status`), and
  // it turns critical when no report came for this long.
  std::chrono::milliseconds ttl{0};

  // The registry's: the state after rise/fall, and the output of the result
  // that set it. An empty output means the check has not run yet.
  Health status = Health::kCritical;
  std::string output;

  // True when the spec fields equal (status and output ignored).
  bool SameSpec(const Check& other) const;
  // The lease check: a ttl check without a ttl of its own.
  bool IsLease() const { return type == CheckType::kTtl && ttl.count() == 0; }
  // A check whose state the instance reports (a ttl check with a ttl).
  bool IsReported() const { return type == CheckType::kTtl && ttl.count() > 0; }
};

inline constexpr std::string_view kDefaultNamespace = "default";
inline constexpr uint32_t kDefaultWeight = 100;
inline constexpr uint32_t kDefaultTtlSeconds = 30;

// One registered endpoint of a service. Field names match the JSON API.
struct Instance {
  std::string ns{kDefaultNamespace};  // "namespace" in JSON
  std::string service;
  std::string id;
  std::string version;  // empty when the instance declares none
  std::string address;  // host:port
  InstanceStatus status = InstanceStatus::kEnabled;
  uint32_t weight = kDefaultWeight;
  std::map<std::string, std::string> metadata;
  // Labels the instance carries ("primary", "eu-west"), in the order given,
  // each once; queries may ask for instances with every one of some tags.
  std::vector<std::string> tags{};
  // Lease length; 0 means no lease: the instance stays until deregistered.
  uint32_t ttl_seconds = kDefaultTtlSeconds;
  Health health = Health::kPassing;
  // Active checks; empty: the lease alone decides (health stays passing).
  std::vector<Check> checks;
  uint64_t create_revision = 0;
  uint64_t modify_revision = 0;

  // True when the user-supplied fields equal (revisions, health and check
  // states ignored).
  bool SameSpec(const Instance& other) const;
  // The worst state of the checks (passing when there are none).
  Health WorstCheck() const;
  // For a registration that replaces `previous` (null: none): each check
  // keeps the state it had when `previous` had the same check (same id and
  // spec); a lease check is passing (the lease holds while registered); a new
  // reported check starts in the status it was registered with (critical
  // unless given); a new active check starts critical and unchecked. Then
  // sets health to the worst.
  void AdoptCheckStates(const Instance* previous);
  // The check with this id, or null.
  const Check* FindCheck(std::string_view check_id) const;
  // True when the instance carries every one of `wanted` (true when empty).
  bool HasTags(const std::vector<std::string>& wanted) const;
};

// Identifies an instance in the registry: namespace, service and id.
struct InstanceKey {
  std::string ns;
  std::string service;
  std::string id;

  friend bool operator==(const InstanceKey&, const InstanceKey&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const InstanceKey& k) {
    return H::combine(std::move(h), k.ns, k.service, k.id);
  }
};

inline InstanceKey KeyOf(const Instance& i) { return {i.ns, i.service, i.id}; }

}  // namespace muster
