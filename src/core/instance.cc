#include "muster/instance.h"

#include <algorithm>

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

std::string_view ToString(CheckType type) {
  switch (type) {
    case CheckType::kTtl:
      return "ttl";
    case CheckType::kHttp:
      return "http";
    case CheckType::kTcp:
      return "tcp";
    case CheckType::kGrpc:
      return "grpc";
    case CheckType::kScript:
      return "script";
  }
  return "ttl";
}

std::optional<Health> ParseHealth(std::string_view text) {
  if (text == "passing") return Health::kPassing;
  if (text == "warning") return Health::kWarning;
  if (text == "critical") return Health::kCritical;
  return std::nullopt;
}

std::optional<CheckType> ParseCheckType(std::string_view text) {
  for (CheckType t : {CheckType::kTtl, CheckType::kHttp, CheckType::kTcp, CheckType::kGrpc,
                      CheckType::kScript}) {
    if (text == ToString(t)) return t;
  }
  return std::nullopt;
}

bool Check::SameSpec(const Check& o) const {
  return id == o.id && type == o.type && target == o.target && interval == o.interval &&
         timeout == o.timeout && rise == o.rise && fall == o.fall &&
         deregister_critical_after == o.deregister_critical_after && method == o.method &&
         headers == o.headers && tls_skip_verify == o.tls_skip_verify &&
         grpc_service == o.grpc_service && args == o.args && ttl == o.ttl;
}

std::optional<InstanceStatus> ParseInstanceStatus(std::string_view text) {
  if (text == "enabled") return InstanceStatus::kEnabled;
  if (text == "disabled") return InstanceStatus::kDisabled;
  return std::nullopt;
}

bool Instance::SameSpec(const Instance& o) const {
  return ns == o.ns && service == o.service && id == o.id && version == o.version &&
         address == o.address && status == o.status && weight == o.weight &&
         metadata == o.metadata && tags == o.tags && ttl_seconds == o.ttl_seconds &&
         std::equal(checks.begin(), checks.end(), o.checks.begin(), o.checks.end(),
                    [](const Check& a, const Check& b) { return a.SameSpec(b); });
}

void Instance::AdoptCheckStates(const Instance* previous) {
  for (Check& c : checks) {
    const Check* before = previous != nullptr ? previous->FindCheck(c.id) : nullptr;
    if (before != nullptr && before->SameSpec(c)) {
      c.status = before->status;
      c.output = before->output;
    } else if (c.IsLease()) {
      c.status = Health::kPassing;
      c.output = "the lease is renewed by heartbeats";
    } else if (c.IsReported()) {
      c.output.clear();  // the registration's status stands until the first report
    } else {
      c.status = Health::kCritical;
      c.output.clear();
    }
  }
  health = WorstCheck();
}

const Check* Instance::FindCheck(std::string_view check_id) const {
  for (const Check& c : checks) {
    if (c.id == check_id) return &c;
  }
  return nullptr;
}

bool Instance::HasTags(const std::vector<std::string>& wanted) const {
  // A handful of tags each: a linear look beats building a set.
  return std::all_of(wanted.begin(), wanted.end(), [this](const std::string& t) {
    return std::find(tags.begin(), tags.end(), t) != tags.end();
  });
}

Health Instance::WorstCheck() const {
  Health worst = Health::kPassing;
  for (const Check& c : checks) worst = std::max(worst, c.status);
  return worst;
}

}  // namespace muster
