#include "catalog/event.h"

#include "core/footprint.h"

namespace muster {

namespace {

// Upper bound on what the text holds besides the instance's JSON and the
// names: "id: N\nevent: T\ndata: " and "\n\n", and the event object's
// field names, revision and type around the instance.
constexpr size_t kEventTextFixed = 192;

}  // namespace

size_t ApproximateTextBytes(const Event& e) {
  size_t bytes = kEventTextFixed + JsonStringBytes(e.instance->ns) +
                 JsonStringBytes(e.instance->service) + JsonStringBytes(e.instance->id) +
                 ApproximateJsonBytes(*e.instance);
  if (e.type == ChangeType::kHealth) {
    if (const Check* c = e.instance->FindCheck(e.check)) bytes += ApproximateJsonBytes(*c);
  }
  return bytes;
}

size_t ApproximateBytes(const Event& e) {
  // The make_shared block of the EventText (once_flag, string, control block).
  constexpr size_t kTextBlock = sizeof(EventText) + 16;
  size_t bytes = sizeof(Event) + HeapBlockBytes(kTextBlock) + HeapBytes(e.check) +
                 HeapBlockBytes(ApproximateTextBytes(e) + 1);
  if (e.instance != nullptr) bytes += ApproximateBytes(*e.instance);
  return bytes;
}

}  // namespace muster
