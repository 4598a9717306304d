#include "client/subscription_view.h"

namespace muster::client {

void SubscriptionView::Reset(const std::vector<Instance>& snapshot) {
  ids_.clear();
  if (!filtered()) return;
  for (const Instance& instance : snapshot) {
    if (Matches(instance)) ids_.insert(instance.id);
  }
}

std::optional<Change> SubscriptionView::Apply(const Change& change) {
  if (!filtered()) return change;
  const std::string& id = change.instance.id;
  const bool was_in = ids_.contains(id);
  switch (change.type) {
    case ChangeType::kRegistered:
    case ChangeType::kUpdated:
    case ChangeType::kHealth: {
      if (Matches(change.instance)) {
        Change out = change;
        // A health change is an update to a subscriber (muster/change.h).
        out.type = was_in ? ChangeType::kUpdated : ChangeType::kRegistered;
        if (!was_in) ids_.insert(id);
        return out;
      }
      if (!was_in) return std::nullopt;
      // Moved out of the filter: gone for this subscriber.
      ids_.erase(id);
      Change out = change;
      out.type = ChangeType::kDeregistered;
      return out;
    }
    case ChangeType::kDeregistered:
    case ChangeType::kExpired:
      if (!was_in) return std::nullopt;
      ids_.erase(id);
      return change;
  }
  return std::nullopt;
}

}  // namespace muster::client
