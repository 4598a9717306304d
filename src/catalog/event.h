// A change to the registry, as watchers see it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "muster/instance.h"

namespace muster {

// kHealth: an active check changed state (after rise/fall), and with it
// possibly the instance's health.
enum class EventType { kRegistered, kUpdated, kDeregistered, kExpired, kHealth };

std::string_view ToString(EventType type);

struct Event {
  uint64_t revision = 0;
  EventType type = EventType::kRegistered;
  // The instance after the change; for deregistered/expired, its last state.
  std::shared_ptr<const Instance> instance;
  // kHealth: the id of the check that changed (its state and output are in
  // `instance`).
  std::string check;
};

}  // namespace muster
