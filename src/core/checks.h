// Recording a new state of one health check in an instance: what the
// embedded catalog and the cluster store (etcd) both do when the health
// checker reports a check's change.
#pragma once

#include "absl/status/statusor.h"
#include "muster/instance.h"

namespace muster {

// `current` with check `check.id` set to `check`'s status and output and the
// health recomputed. NotFound when `current` no longer has that check with
// the same spec (a re-registration changed or dropped it meanwhile).
absl::StatusOr<Instance> WithCheckState(const Instance& current, const Check& check);

// Whether `next` differs from `current` only in check states (and so health):
// the change a check's transition makes. Sets `check_id` to the first check
// whose state differs.
bool OnlyCheckStatesDiffer(const Instance& current, const Instance& next, std::string* check_id);

}  // namespace muster
