#include "muster/change.h"

namespace muster {

std::string_view ToString(ChangeType type) {
  switch (type) {
    case ChangeType::kRegistered:
      return "registered";
    case ChangeType::kUpdated:
      return "updated";
    case ChangeType::kDeregistered:
      return "deregistered";
    case ChangeType::kExpired:
      return "expired";
    case ChangeType::kHealth:
      return "health";
  }
  return "updated";
}

std::optional<ChangeType> ParseChangeType(std::string_view text) {
  for (ChangeType type : {ChangeType::kRegistered, ChangeType::kUpdated, ChangeType::kDeregistered,
                          ChangeType::kExpired, ChangeType::kHealth}) {
    if (text == ToString(type)) return type;
  }
  return std::nullopt;
}

}  // namespace muster
