// Test hooks of the memory backend (NewMemoryRegistry, muster/registry.h).
#pragma once

#include <cstddef>

#include "muster/registry.h"

namespace muster::client {

// Expires now, on the calling thread, every instance of `registry` (made by
// NewMemoryRegistry) whose lease has lapsed by the registry's clock, and
// queues the kExpired changes as the sweeper would. Returns how many expired
// (0 for any other registry). With a ManualClock, tests advance the clock and
// sweep, and never sleep for a lease.
size_t SweepMemoryRegistryNow(Registry& registry);

}  // namespace muster::client
