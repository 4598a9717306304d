// The bodies musterd answers with on success, decoded where they are read
// (the SDK, musterctl, the tests and benches) and, for watch events, encoded
// where musterd writes them, so that both sides use one set of field names
// (docs/api.md):
//   list      {"revision": N, "instances": [Instance...]}
//   services  {"revision": N, "services": [{"name", "instances", "healthy"}...]}
//   watch     SSE frames "id: N\nevent: TYPE\ndata: {...}\n\n", where TYPE is
//             a ChangeType's name (muster/change.h) or "compacted", and the
//             data is {"revision", "type", "namespace", "service", "id",
//             "instance"[, "check"]}.
// Decoders are lenient about fields they do not know and strict about the
// ones they need: a missing or mistyped one is Internal ("musterd sent a
// malformed ..."), because a client can only resync, not fix it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "absl/status/statusor.h"
#include "muster/change.h"
#include "muster/instance.h"

namespace muster::wire {

// The SSE event a watch stream ends with when it fell behind the retained
// history; its data is an error body with the code "gone".
inline constexpr std::string_view kCompactedEvent = "compacted";

struct ListAnswer {
  uint64_t revision = 0;
  std::vector<Instance> instances;
};
absl::StatusOr<ListAnswer> DecodeListAnswer(std::string_view body);

struct ServiceCount {
  std::string name;
  uint64_t instances = 0;
  uint64_t healthy = 0;
};
struct ServicesAnswer {
  uint64_t revision = 0;
  std::vector<ServiceCount> services;
};
absl::StatusOr<ServicesAnswer> DecodeServicesAnswer(std::string_view body);

// The data of a change event. `check` (kHealth only) is the check that changed
// state, or null.
boost::json::object EventToJson(uint64_t revision, ChangeType type, const Instance& instance,
                                const Check* check);

// One change event of a watch stream, decoded.
struct WatchEvent {
  uint64_t revision = 0;
  ChangeType type = ChangeType::kRegistered;
  Instance instance;
  std::string check;  // kHealth: the id of the check that changed, if named
};

// Decodes the SSE event named `name` with `data`. nullopt for an event that
// is not a change (a reader skips it: later servers may send more kinds);
// OutOfRange for "compacted" (list again and watch anew); Internal when a
// change event is malformed.
absl::StatusOr<std::optional<WatchEvent>> DecodeWatchEvent(std::string_view name,
                                                           std::string_view data);

}  // namespace muster::wire
