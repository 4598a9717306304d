#include "muster/instance.h"

namespace muster {

std::string_view ToString(InstanceStatus status) {
  return status == InstanceStatus::kEnabled ? "enabled" : "disabled";
}

std::string_view ToString(Health health) {
  switch (health) {
    case Health::kPassing:
      return "passing";
    case Health::kWarning:
      return "warning";
    case Health::kCritical:
      return "critical";
  }
  return "critical";
}

std::optional<InstanceStatus> ParseInstanceStatus(std::string_view text) {
  if (text == "enabled") return InstanceStatus::kEnabled;
  if (text == "disabled") return InstanceStatus::kDisabled;
  return std::nullopt;
}

bool Instance::SameSpec(const Instance& o) const {
  return ns == o.ns && service == o.service && id == o.id && version == o.version &&
         address == o.address && status == o.status && weight == o.weight &&
         metadata == o.metadata && ttl_seconds == o.ttl_seconds;
}

}  // namespace muster
