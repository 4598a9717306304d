// A change to the registry, as watchers see it.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "muster/instance.h"

namespace muster {

// kHealth: an active check changed state (after rise/fall), and with it
// possibly the instance's health.
enum class EventType { kRegistered, kUpdated, kDeregistered, kExpired, kHealth };

std::string_view ToString(EventType type);

// An event's text as a server sends it (e.g. an SSE frame), made once by
// whichever reader needs it first and shared by every copy of the event: ten
// thousand watchers of a service format a change once, not ten thousand
// times.
struct EventText {
  std::once_flag once;
  std::string text;

  template <typename Format>
  const std::string& Get(Format&& format) {
    std::call_once(once, [&] { text = format(); });
    return text;
  }
};

struct Event {
  Event() = default;
  Event(uint64_t rev, EventType t, std::shared_ptr<const Instance> in, std::string check_id = {})
      : revision(rev), type(t), instance(std::move(in)), check(std::move(check_id)) {}

  uint64_t revision = 0;
  EventType type = EventType::kRegistered;
  // The instance after the change; for deregistered/expired, its last state.
  std::shared_ptr<const Instance> instance;
  // kHealth: the id of the check that changed (its state and output are in
  // `instance`).
  std::string check;
  // Set by WatchHub::Publish for the events it retains; null otherwise.
  std::shared_ptr<EventText> text;
};

}  // namespace muster
