#include "store/stored_value.h"

#include <charconv>

#include "core/json_codec.h"
#include "core/strings.h"

namespace muster {

std::string StoredInstanceKey(const InstanceKey& key) {
  std::string out;
  out.reserve(kStoredInstancePrefix.size() + key.ns.size() + key.service.size() + key.id.size() + 2);
  out.append(kStoredInstancePrefix).append(key.ns).push_back('\0');
  out.append(key.service).push_back('\0');
  out.append(key.id);
  return out;
}

std::string StoredInstanceValue(const Instance& instance) { return SerializeInstance(instance); }

std::string StoredRevisionValue(uint64_t revision) { return StrCat(revision); }

absl::StatusOr<uint64_t> DecodeStoredRevision(std::string_view value) {
  uint64_t revision = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), revision);
  if (ec != std::errc() || end != value.data() + value.size()) {
    return absl::DataLossError(StrCat("bad stored revision \"", value, "\""));
  }
  return revision;
}

absl::StatusOr<Instance> DecodeStoredInstance(std::string_view key, std::string_view value) {
  absl::StatusOr<Instance> instance = ParseInstance(value);
  if (!instance.ok()) {
    // The key in hex, as RocksDB's Slice::ToString(true) spells it: it holds NULs.
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string hex;
    hex.reserve(2 * key.size());
    for (unsigned char c : key) {
      hex.push_back(kHex[c >> 4]);
      hex.push_back(kHex[c & 15]);
    }
    return absl::DataLossError(
        StrCat("bad stored instance under key ", hex, ": ", instance.status().message()));
  }
  return instance;
}

}  // namespace muster
