// Helpers on ServiceQuery and InstanceKey shared by the SDK's backends and caches.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "core/limits.h"
#include "core/strings.h"
#include "core/validation.h"
#include "muster/registry.h"

namespace muster {

// Hash of a ServiceQuery, for unordered maps keyed by query.
struct ServiceQueryHash {
  size_t operator()(const ServiceQuery& q) const {
    std::hash<std::string> h;
    size_t seed = h(q.ns);
    seed ^= h(q.service) + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2);
    seed ^= h(q.version) + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2);
    for (const std::string& t : q.tags) {
      seed ^= h(t) + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2);
    }
    return seed;
  }
};

// InvalidArgument naming the field when a name in the key is malformed.
inline absl::Status ValidateKey(const InstanceKey& key, const Limits& limits) {
  if (auto s = ValidateName("namespace", key.ns, limits); !s.ok()) return s;
  if (auto s = ValidateName("service", key.service, limits); !s.ok()) return s;
  return ValidateName("id", key.id, limits);
}

// The same for a query; an empty version means every version.
inline absl::Status ValidateQuery(const ServiceQuery& query, const Limits& limits) {
  if (auto s = ValidateName("namespace", query.ns, limits); !s.ok()) return s;
  if (auto s = ValidateName("service", query.service, limits); !s.ok()) return s;
  if (!query.version.empty()) {
    if (auto s = ValidateName("version", query.version, limits); !s.ok()) return s;
  }
  if (query.tags.size() > limits.max_tags) {
    return absl::InvalidArgumentError(StrCat("more than ", limits.max_tags, " tag filters"));
  }
  for (const std::string& tag : query.tags) {
    if (auto s = ValidateTag(tag, limits); !s.ok()) return s;
  }
  return absl::OkStatus();
}

// Whether `instance` is one the query asks for (its version, its tags); the
// namespace and service are the caller's to match.
inline bool QueryMatches(const ServiceQuery& query, const Instance& instance) {
  return (query.version.empty() || instance.version == query.version) &&
         instance.HasTags(query.tags);
}

}  // namespace muster
