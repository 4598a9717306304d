#include "core/validation.h"

#include <charconv>

#include "core/strings.h"

namespace muster {
namespace {

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

bool IsHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

bool IsIpv6Char(char c) {
  return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') || c == ':' ||
         c == '.' || c == '%';
}

// host:port with a port of at least min_port.
absl::Status CheckAddress(std::string_view address, const Limits& limits, unsigned min_port) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        StrCat("address \"", address.substr(0, 64), "\" is not host:port: ", why));
  };
  if (address.size() > limits.max_address_length) return bad("too long");
  size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) return bad("no port");
  std::string_view host = address.substr(0, colon);
  std::string_view port = address.substr(colon + 1);
  if (host.empty()) return bad("empty host");
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return bad("unbalanced brackets");
    for (char c : host.substr(1, host.size() - 2)) {
      if (!IsIpv6Char(c)) return bad("bad IPv6 address");
    }
  } else {
    for (char c : host) {
      if (!IsHostChar(c)) return bad("bad host character");
    }
  }
  if (port.empty() || port.size() > 5) return bad("bad port");
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value < min_port || value > 65535) {
    return bad(StrCat("port must be ", min_port, "..65535"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateName(std::string_view what, std::string_view name, const Limits& limits) {
  if (name.empty()) return absl::InvalidArgumentError(StrCat(what, " must not be empty"));
  if (name.size() > limits.max_name_length) {
    return absl::InvalidArgumentError(
        StrCat(what, " is longer than ", limits.max_name_length, " characters"));
  }
  for (char c : name) {
    if (!IsNameChar(c)) {
      return absl::InvalidArgumentError(
          StrCat(what, " may contain only letters, digits, '.', '_' and '-'"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateAddress(std::string_view address, const Limits& limits) {
  return CheckAddress(address, limits, 1);
}

absl::StatusOr<std::pair<std::string, uint16_t>> SplitHostPort(std::string_view address) {
  if (auto s = CheckAddress(address, Limits(), 0); !s.ok()) return s;
  size_t colon = address.rfind(':');
  std::string_view host = address.substr(0, colon);
  if (host.front() == '[') host = host.substr(1, host.size() - 2);
  unsigned port = 0;
  std::from_chars(address.data() + colon + 1, address.data() + address.size(), port);
  return std::make_pair(std::string(host), static_cast<uint16_t>(port));
}

absl::Status ValidateInstance(const Instance& in, const Limits& limits) {
  if (auto s = ValidateName("namespace", in.ns, limits); !s.ok()) return s;
  if (auto s = ValidateName("service", in.service, limits); !s.ok()) return s;
  if (auto s = ValidateName("id", in.id, limits); !s.ok()) return s;
  if (!in.version.empty()) {
    if (auto s = ValidateName("version", in.version, limits); !s.ok()) return s;
  }
  if (auto s = ValidateAddress(in.address, limits); !s.ok()) return s;
  if (in.weight < limits.min_weight || in.weight > limits.max_weight) {
    return absl::InvalidArgumentError(
        StrCat("weight must be ", limits.min_weight, "..", limits.max_weight));
  }
  if (in.ttl_seconds > limits.max_ttl_seconds) {
    return absl::InvalidArgumentError(
        StrCat("ttl_seconds must be 0..", limits.max_ttl_seconds));
  }
  if (in.metadata.size() > limits.max_metadata_entries) {
    return absl::InvalidArgumentError(
        StrCat("metadata has more than ", limits.max_metadata_entries, " entries"));
  }
  for (const auto& [key, value] : in.metadata) {
    if (auto s = ValidateName("metadata key", key, limits); !s.ok()) return s;
    if (value.size() > limits.max_metadata_value_bytes) {
      return absl::InvalidArgumentError(StrCat("metadata value of \"", key, "\" is over ",
                                                     limits.max_metadata_value_bytes, " bytes"));
    }
  }
  return absl::OkStatus();
}

}  // namespace muster
