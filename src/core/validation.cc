#include "core/validation.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "core/duration.h"
#include "core/strings.h"
#include "core/utf8.h"

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
        StrCat("address \"", Utf8Prefix(address, 64), "\" is not host:port: ", why));
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

absl::StatusOr<std::pair<std::string, uint16_t>> SplitHostPort(std::string_view address,
                                                               AddressUse use) {
  const unsigned min_port = use == AddressUse::kListen ? 0 : 1;
  if (auto s = CheckAddress(address, Limits(), min_port); !s.ok()) return s;
  size_t colon = address.rfind(':');
  std::string_view host = address.substr(0, colon);
  if (host.front() == '[') host = host.substr(1, host.size() - 2);
  unsigned port = 0;
  std::from_chars(address.data() + colon + 1, address.data() + address.size(), port);
  return std::make_pair(std::string(host), static_cast<uint16_t>(port));
}

namespace {

bool IsTokenChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), IsTokenChar);
}

// No control characters (CR, LF, NUL, ...) that could split a request line or header.
bool IsPrintable(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
}

}  // namespace

absl::Status ValidateCheckId(std::string_view id, const Limits& limits) {
  if (id.empty()) return absl::InvalidArgumentError("check id must not be empty");
  if (id.size() > 2 * limits.max_name_length) {
    return absl::InvalidArgumentError(
        StrCat("check id is longer than ", 2 * limits.max_name_length, " characters"));
  }
  for (char c : id) {
    if (!IsNameChar(c) && c != ':') {
      return absl::InvalidArgumentError(
          "check id may contain only letters, digits, '.', '_', '-' and ':'");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateTag(std::string_view tag, const Limits& limits) {
  if (tag.empty()) return absl::InvalidArgumentError("a tag must not be empty");
  if (tag.size() > limits.max_tag_bytes) {
    return absl::InvalidArgumentError(
        StrCat("a tag is longer than ", limits.max_tag_bytes, " bytes"));
  }
  if (!IsPrintable(tag)) return absl::InvalidArgumentError("a tag has control characters");
  return absl::OkStatus();
}

namespace {

absl::Status CheckError(const Check& c, std::string_view message) {
  return absl::InvalidArgumentError(StrCat("check \"", c.id, "\": ", message));
}

absl::Status ValidateCheck(const Instance& in, const Check& c, const Limits& limits) {
  if (auto s = ValidateCheckId(c.id, limits); !s.ok()) return s;
  if (c.target.size() > limits.max_check_target_bytes) {
    return CheckError(c, StrCat("target is over ", limits.max_check_target_bytes, " bytes"));
  }
  if (!IsPrintable(c.target)) return CheckError(c, "target has control characters");
  if (c.IsLease()) {
    if (in.ttl_seconds == 0) {
      return CheckError(c, "a ttl check without a ttl of its own is the lease: it needs ttl_seconds above 0");
    }
    return absl::OkStatus();
  }
  if (c.IsReported()) {
    if (c.ttl < limits.min_check_interval || c.ttl > limits.max_check_interval) {
      return CheckError(c, StrCat("ttl must be ", FormatDuration(limits.min_check_interval), "..",
                                  FormatDuration(limits.max_check_interval)));
    }
    if (c.deregister_critical_after < std::chrono::milliseconds(0)) {
      return CheckError(c, "deregister_critical_after must not be negative");
    }
    return absl::OkStatus();
  }
  if (c.ttl.count() != 0) return CheckError(c, "only a ttl check has a ttl");
  if (c.interval < limits.min_check_interval || c.interval > limits.max_check_interval) {
    return CheckError(c, StrCat("interval must be ", FormatDuration(limits.min_check_interval), "..",
                                FormatDuration(limits.max_check_interval)));
  }
  if (c.timeout <= std::chrono::milliseconds(0) || c.timeout > limits.max_check_timeout) {
    return CheckError(c, StrCat("timeout must be above 0s and at most ",
                                FormatDuration(limits.max_check_timeout)));
  }
  if (c.rise < 1 || c.rise > limits.max_check_threshold || c.fall < 1 ||
      c.fall > limits.max_check_threshold) {
    return CheckError(c, StrCat("rise and fall must be 1..", limits.max_check_threshold));
  }
  if (c.deregister_critical_after < std::chrono::milliseconds(0)) {
    return CheckError(c, "deregister_critical_after must not be negative");
  }
  switch (c.type) {
    case CheckType::kHttp: {
      const std::string_view t = c.target;
      if (!t.empty() && !t.starts_with('/') && !t.starts_with("http://") && !t.starts_with("https://")) {
        return CheckError(c, "an http target is a path (\"/health\") or an http:// or https:// URL");
      }
      if (!IsToken(c.method)) return CheckError(c, "method must be an HTTP method such as GET");
      if (c.headers.size() > limits.max_check_headers) {
        return CheckError(c, StrCat("more than ", limits.max_check_headers, " headers"));
      }
      for (const auto& [name, value] : c.headers) {
        if (!IsToken(name)) return CheckError(c, StrCat("bad header name \"", name, "\""));
        if (!IsPrintable(value) || value.size() > limits.max_metadata_value_bytes) {
          return CheckError(c, StrCat("bad value for header \"", name, "\""));
        }
      }
      break;
    }
    case CheckType::kTcp:
    case CheckType::kGrpc:
      if (!c.target.empty()) {
        if (auto s = ValidateAddress(c.target, limits); !s.ok()) {
          return CheckError(c, StrCat("target: ", MessageOf(s)));
        }
      }
      if (c.type == CheckType::kGrpc && (c.grpc_service.size() > limits.max_check_target_bytes ||
                                         !IsPrintable(c.grpc_service))) {
        return CheckError(c, "bad grpc_service");
      }
      break;
    case CheckType::kScript:
      if (c.target.empty()) return CheckError(c, "a script check needs the program as its target");
      if (c.args.size() > limits.max_check_args) {
        return CheckError(c, StrCat("more than ", limits.max_check_args, " args"));
      }
      for (const auto& a : c.args) {
        if (a.size() > limits.max_check_target_bytes || a.find('\0') != std::string::npos) {
          return CheckError(c, "an argument is too long or has a NUL byte");
        }
      }
      break;
    case CheckType::kTtl:
      break;
  }
  return absl::OkStatus();
}

}  // namespace

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
  if (in.tags.size() > limits.max_tags) {
    return absl::InvalidArgumentError(StrCat("more than ", limits.max_tags, " tags"));
  }
  for (size_t i = 0; i < in.tags.size(); ++i) {
    if (auto s = ValidateTag(in.tags[i], limits); !s.ok()) return s;
    if (std::find(in.tags.begin(), in.tags.begin() + i, in.tags[i]) != in.tags.begin() + i) {
      return absl::InvalidArgumentError(StrCat("tag \"", in.tags[i], "\" is given twice"));
    }
  }
  if (in.checks.size() > limits.max_checks_per_instance) {
    return absl::InvalidArgumentError(
        StrCat("more than ", limits.max_checks_per_instance, " checks"));
  }
  size_t ttl_checks = 0;
  for (size_t i = 0; i < in.checks.size(); ++i) {
    const Check& c = in.checks[i];
    if (auto s = ValidateCheck(in, c, limits); !s.ok()) return s;
    ttl_checks += c.IsLease();
    for (size_t j = 0; j < i; ++j) {
      if (in.checks[j].id == c.id) {
        return absl::InvalidArgumentError(
            StrCat("two checks have the id \"", c.id, "\"; give each an \"id\""));
      }
    }
  }
  if (ttl_checks > 1) {
    return absl::InvalidArgumentError("at most one ttl check without a ttl of its own: it is the lease");
  }
  return absl::OkStatus();
}

}  // namespace muster
