// A change to one instance: what kind of change it was, the registry revision
// that made it and the instance it left behind. Part of the data model, next
// to instance.h: the catalog's watch events, the SDK's subscriptions, the
// etcd key layout and the watch stream's event names all speak of changes in
// these words, so there is one enum and one spelling of it.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "muster/instance.h"

namespace muster {

// kHealth: an active check changed state (after rise/fall), and with it
// possibly the instance's health; nothing the instance registered changed.
// musterd's watch stream sends it as its own event ("health"). A Registry
// subscription never delivers it: to a subscriber a health change is
// kUpdated, the instance carrying its new health and check states
// (docs/sdk-registries.md, "Change kinds").
enum class ChangeType { kRegistered, kUpdated, kDeregistered, kExpired, kHealth };

// "registered", "updated", "deregistered", "expired", "health": the names the
// watch stream uses as SSE event names and in an event's "type".
std::string_view ToString(ChangeType type);
// The inverse of ToString; nullopt for any other text.
std::optional<ChangeType> ParseChangeType(std::string_view text);

// One change to one instance; for kDeregistered/kExpired, `instance` is its last state.
struct Change {
  uint64_t revision = 0;
  ChangeType type = ChangeType::kRegistered;
  Instance instance;
};

}  // namespace muster
