// Internal to libmuster: NewMusterRegistry with the settings that
// MusterRegistryOptions does not expose, so that tests can shorten them.
#pragma once

#include <chrono>
#include <memory>

#include "absl/status/statusor.h"
#include "muster/registry.h"

namespace muster::client {

struct MusterRegistryTuning {
  // A watch stream on which nothing arrived for this long (no event and no
  // ": keep-alive" comment, which musterd sends every --watch-keepalive, 15 s
  // by default) is taken for dead: a half-open connection (the host vanished,
  // a middlebox dropped the flow) never reports an error by itself. The
  // subscription then opens a new stream from the last revision seen; only
  // if that fails does it report an outage.
  std::chrono::milliseconds stream_idle_timeout = std::chrono::seconds(45);
};

// NewMusterRegistry(options) is NewMusterRegistry(options, {}).
absl::StatusOr<std::unique_ptr<Registry>> NewMusterRegistry(const MusterRegistryOptions& options,
                                                            const MusterRegistryTuning& tuning);

}  // namespace muster::client
