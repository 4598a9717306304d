// The GeeRPC registry protocol's decisions, apart from HTTP and the catalog:
// which instance a POST announcing a server registers, and what a GET answers
// for the instances listed. server/geerpc.cc serves them; fuzz/ feeds them
// arbitrary header values.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/limits.h"
#include "muster/instance.h"

namespace muster {

// The metadata key that keeps the address as the server announced it
// (with its protocol), so that GET answers it as it came.
inline constexpr std::string_view kGeeRpcAddrKey = "geerpc_addr";

// The host:port of a server address as GeeRPC announces it
// ("[protocol@]host:port"), or InvalidArgument.
absl::StatusOr<std::string> GeeRpcHostPort(std::string_view server, const Limits& limits);

// The instance of `service` (default namespace) that announcing `server`
// ("[protocol@]host:port", the value of the X-Geerpc-Server header)
// registers, holding a lease of `ttl`. InvalidArgument when the value is not
// such an address or the instance it makes is not valid.
absl::StatusOr<Instance> GeeRpcInstance(std::string_view server, std::string_view service,
                                        std::chrono::milliseconds ttl, const Limits& limits);

// The value of the X-Geerpc-Servers header for these instances: each one's
// announced address (its own address when it has none that GeeRPC could have
// announced, as an instance registered through the native API may), sorted
// and joined with ",".
std::string GeeRpcServerList(const std::vector<std::shared_ptr<const Instance>>& instances,
                             const Limits& limits);

}  // namespace muster
