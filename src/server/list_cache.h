// Serialized instance lists, kept while their service is unchanged.
//
// A list answer is the service's instances as JSON; building it costs
// microseconds per instance, many times what sending it costs. Every change
// to a service raises its revision (Catalog::RevisionsOf), so the JSON made
// at one service revision is the answer until the next: readers of a
// service that is not changing share one serialization.
//
// Entries are keyed by namespace, service and list filter. The cache holds at
// most `byte_limit` bytes of JSON and keys; storing past that evicts entries
// in no particular order until it fits again. An answer larger than the
// limit is not kept.
//
// Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "catalog/catalog.h"
#include "core/mutex.h"

namespace muster {

class ListCache {
 public:
  explicit ListCache(size_t byte_limit) : byte_limit_(byte_limit) {}
  ListCache(const ListCache&) = delete;
  ListCache& operator=(const ListCache&) = delete;

  // The cache key of a list of ns/service with `filter`.
  static std::string KeyOf(std::string_view ns, std::string_view service, const ListFilter& filter);

  // The JSON stored under `key` for exactly `service_revision`, or null.
  std::shared_ptr<const std::string> Find(const std::string& key, uint64_t service_revision) const;
  // Keeps `json` as the answer for `key` at `service_revision`, unless a
  // newer revision's answer is kept already.
  void Store(std::string key, uint64_t service_revision, std::shared_ptr<const std::string> json);

  size_t bytes() const;
  size_t entries() const;

 private:
  struct Entry {
    uint64_t service_revision = 0;
    std::shared_ptr<const std::string> json;
  };
  static size_t Cost(const std::string& key, const Entry& e) { return key.size() + e.json->size(); }

  const size_t byte_limit_;
  mutable SharedMutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;  // Cost of every entry
};

}  // namespace muster
