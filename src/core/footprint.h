// How much memory the registry's values take, approximately: what the
// byte-bounded parts of musterd (the watch history, the per-service limit on
// instance bytes) count.
//
// The counts model libstdc++ and glibc malloc on a 64-bit host: a string
// longer than its 15 inline characters owns a heap block of capacity + 1, a
// std::map node is 32 bytes of tree links plus its value, and every heap
// block costs its size plus an 8-byte header, rounded up to 16, at least 32.
// They are meant to be within a few percent of what the allocator really
// holds for an instance, never far below it; allocator fragmentation is not
// counted.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "muster/instance.h"

namespace muster {

// What malloc takes for a block of `n` bytes (0 for none).
size_t HeapBlockBytes(size_t n);

// The heap a string owns beyond its own object (0 while it fits inline).
size_t HeapBytes(const std::string& s);

// An instance held by a shared_ptr made with make_shared: the object, its
// control block and everything it owns (strings, metadata and check nodes).
size_t ApproximateBytes(const Instance& instance);

// The length of `s` as a JSON string: quotes plus escapes included.
size_t JsonStringBytes(std::string_view s);

// The length of SerializeInstance(instance) (json_codec.h), or a little more:
// never less, at most a few hundred bytes more per instance and check.
size_t ApproximateJsonBytes(const Instance& instance);
// The same for CheckToJson(check).
size_t ApproximateJsonBytes(const Check& check);

}  // namespace muster
