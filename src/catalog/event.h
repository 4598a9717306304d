// A change to the registry, as watchers see it.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "muster/instance.h"

namespace muster {

enum class EventType { kRegistered, kUpdated, kDeregistered, kExpired };

std::string_view ToString(EventType type);

struct Event {
  uint64_t revision = 0;
  EventType type = EventType::kRegistered;
  // The instance after the change; for deregistered/expired, its last state.
  std::shared_ptr<const Instance> instance;
};

}  // namespace muster
