// A change to the registry, as watchers see it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "muster/change.h"
#include "muster/instance.h"

namespace muster {

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
  Event(uint64_t rev, ChangeType t, std::shared_ptr<const Instance> in, std::string check_id = {})
      : revision(rev), type(t), instance(std::move(in)), check(std::move(check_id)) {}

  uint64_t revision = 0;
  ChangeType type = ChangeType::kRegistered;
  // The instance after the change; for deregistered/expired, its last state.
  std::shared_ptr<const Instance> instance;
  // kHealth: the id of the check that changed (its state and output are in
  // `instance`).
  std::string check;
  // Set by WatchHub::Publish for the events it retains; null otherwise.
  std::shared_ptr<EventText> text;
  // Set by WatchHub::Publish for the events it retains: ApproximateBytes(*this).
  size_t bytes = 0;
};

// The length of the event's text as a server formats it (FormatEvent in
// server/watch_stream.h), or a little more; never less.
size_t ApproximateTextBytes(const Event& event);

// The memory a retained event holds: its place in the history, its instance
// (counted whole, although the catalog may share the newest state of an
// instance with its last event) and its text, counted as if formatted. The
// text is made only when a watcher first reads the event, so an event nobody
// read is counted for a text it does not yet have: the bound holds however
// many readers come.
size_t ApproximateBytes(const Event& event);

}  // namespace muster
