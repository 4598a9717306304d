// Validation of names, addresses and instances. Every error is an
// InvalidArgument status whose message names the offending field.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "muster/instance.h"
#include "core/limits.h"

namespace muster {

// A name (service, id, namespace, version, metadata key) is 1..max_name_length
// characters from [A-Za-z0-9._-]. `what` names the field in the error message.
absl::Status ValidateName(std::string_view what, std::string_view name, const Limits& limits);

// A check id: a name that may also hold ':' (Consul's "service:web-1"), of
// at most twice max_name_length, so that such a prefix fits on any id.
absl::Status ValidateCheckId(std::string_view id, const Limits& limits);

// host:port with a host name, an IPv4 address or a bracketed IPv6 address, and
// a port in 1..65535.
absl::Status ValidateAddress(std::string_view address, const Limits& limits);

// InvalidArgument unless `tag` is 1..max_tag_bytes bytes without control
// characters (any other text is a tag: "primary", "traefik.enable=true").
absl::Status ValidateTag(std::string_view tag, const Limits& limits);

// What an address is for, which decides whether port 0 is allowed.
enum class AddressUse {
  kListen,  // an address to listen on: port 0 asks for any free port
  kDial,    // an address to connect to: the port must be 1..65535
};

// Splits host:port (a host name, an IPv4 address or a bracketed IPv6 address)
// into the host (brackets removed) and the port. InvalidArgument naming the
// address when it is malformed, over Limits().max_address_length, or its port
// is out of range for `use`.
absl::StatusOr<std::pair<std::string, uint16_t>> SplitHostPort(std::string_view address,
                                                               AddressUse use);

// Checks every user-supplied field of an instance. The version may be empty.
absl::Status ValidateInstance(const Instance& instance, const Limits& limits);

}  // namespace muster
