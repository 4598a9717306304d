// How the embedded store (rocksdb_journal.cc) spells what it keeps, apart
// from RocksDB: the key of an instance, and the values of an instance and of
// the registry revision, written and read back. fuzz/ feeds the decoders
// arbitrary bytes, as a damaged store could hold.
//
// Keys: "i/<namespace>\0<service>\0<id>" for an instance (names never hold a
// NUL), "m/revision" for the revision. Values: the instance as JSON
// (core/json_codec.h), the revision as a decimal number.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "muster/instance.h"

namespace muster {

inline constexpr std::string_view kStoredInstancePrefix = "i/";
inline constexpr std::string_view kStoredRevisionKey = "m/revision";

std::string StoredInstanceKey(const InstanceKey& key);
std::string StoredInstanceValue(const Instance& instance);
std::string StoredRevisionValue(uint64_t revision);

// The revision stored under kStoredRevisionKey; DataLoss when it is not a
// decimal number.
absl::StatusOr<uint64_t> DecodeStoredRevision(std::string_view value);

// The instance stored under `key`; DataLoss, naming the key, when the value
// is not an instance.
absl::StatusOr<Instance> DecodeStoredInstance(std::string_view key, std::string_view value);

}  // namespace muster
