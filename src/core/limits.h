// Input limits enforced by the registry. Defaults are documented in docs/api.md;
// musterd can change them by flag or config file.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace muster {

struct Limits {
  size_t max_name_length = 128;            // service, id, namespace, version, metadata keys
  size_t max_metadata_entries = 64;
  size_t max_metadata_value_bytes = 512;
  size_t max_tags = 64;
  size_t max_tag_bytes = 128;
  size_t max_address_length = 261;         // 255-byte host name, ':' and a 5-digit port
  size_t max_body_bytes = 64 * 1024;
  uint32_t min_weight = 1;
  uint32_t max_weight = 10000;
  uint32_t max_ttl_seconds = 24 * 3600;
  size_t max_instances_per_service = 100000;
  // Memory the instances may hold (core/footprint.h ApproximateBytes), per
  // service and in the whole registry; a registration past either is
  // refused with 429 resource_exhausted. musterd's default for the whole
  // registry is a quarter of its memory (server/memory_budget.h).
  size_t max_service_bytes = size_t{256} << 20;
  size_t max_catalog_bytes = SIZE_MAX;
  // Health checks (docs/api.md).
  size_t max_checks_per_instance = 8;
  size_t max_check_target_bytes = 2048;
  size_t max_check_headers = 16;
  size_t max_check_args = 32;
  std::chrono::milliseconds min_check_interval{100};
  std::chrono::milliseconds max_check_interval = std::chrono::hours(24);
  std::chrono::milliseconds max_check_timeout = std::chrono::minutes(5);
  uint32_t max_check_threshold = 100;  // rise and fall
};

}  // namespace muster
