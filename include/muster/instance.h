// The instance model: what a service instance is, as the registry stores it
// and the SDK hands it out. Shared by musterd, musterctl and libmuster.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace muster {

// Whether an instance may be handed out. A disabled instance stays registered
// (and keeps its lease) but discovery leaves it out.
enum class InstanceStatus { kEnabled, kDisabled };

// Derived health: from the lease alone it is always passing while registered;
// active checks (later) may lower it.
enum class Health { kPassing, kWarning, kCritical };

std::string_view ToString(InstanceStatus status);
std::string_view ToString(Health health);
std::optional<InstanceStatus> ParseInstanceStatus(std::string_view text);

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
  // Lease length; 0 means no lease: the instance stays until deregistered.
  uint32_t ttl_seconds = kDefaultTtlSeconds;
  Health health = Health::kPassing;
  uint64_t create_revision = 0;
  uint64_t modify_revision = 0;

  // True when the user-supplied fields equal (revisions and health ignored).
  bool SameSpec(const Instance& other) const;
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
