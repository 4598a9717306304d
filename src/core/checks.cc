#include "core/checks.h"

#include "core/strings.h"

namespace muster {

absl::StatusOr<Instance> WithCheckState(const Instance& current, const Check& check) {
  const Check* stored = current.FindCheck(check.id);
  if (stored == nullptr || !stored->SameSpec(check)) {
    return absl::NotFoundError(StrCat("instance ", current.id, " of service ", current.service,
                                      " no longer has check ", check.id, " as it was run"));
  }
  Instance next = current;
  for (Check& c : next.checks) {
    if (c.id == check.id) {
      c.status = check.status;
      c.output = check.output;
    }
  }
  next.health = next.WorstCheck();
  return next;
}

bool OnlyCheckStatesDiffer(const Instance& current, const Instance& next, std::string* check_id) {
  if (!current.SameSpec(next)) return false;
  for (size_t i = 0; i < next.checks.size(); ++i) {
    const Check& a = current.checks[i];
    const Check& b = next.checks[i];
    if (a.status != b.status || a.output != b.output) {
      *check_id = b.id;
      return true;
    }
  }
  return false;
}

}  // namespace muster
