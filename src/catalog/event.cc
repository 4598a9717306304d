#include "catalog/event.h"

namespace muster {

std::string_view ToString(EventType type) {
  switch (type) {
    case EventType::kRegistered:
      return "registered";
    case EventType::kUpdated:
      return "updated";
    case EventType::kDeregistered:
      return "deregistered";
    case EventType::kExpired:
      return "expired";
    case EventType::kHealth:
      return "health";
  }
  return "updated";
}

}  // namespace muster
