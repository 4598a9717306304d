// A probe runs one kind of active health check (HTTP, TCP, gRPC, script)
// against one instance. The health checker (health_checker.h) owns one probe
// per check and calls Run once per interval; probes never block the calling
// thread: the work runs on the I/O threads (Asio) or gRPC's own threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "muster/instance.h"

namespace muster {

// Most bytes of output a check keeps (longer output is cut, with a note).
inline constexpr size_t kMaxCheckOutputBytes = 4096;

struct ProbeResult {
  Health status = Health::kCritical;
  // What the check saw, for people: "HTTP 200 OK", "connect: Connection
  // refused", the script's output. Never empty; at most kMaxCheckOutputBytes.
  std::string output;
};

using ProbeCallback = absl::AnyInvocable<void(ProbeResult) &&>;

class Probe {
 public:
  virtual ~Probe() = default;

  // Runs the check once. `done` runs exactly once, on any thread, at most
  // about `timeout` after the call (a run that takes longer reports critical,
  // "timed out after 2s"). Run is not called again before `done` ran. The
  // probe keeps itself alive while a run is in flight (the caller may drop
  // its reference after Cancel).
  virtual void Run(std::chrono::milliseconds timeout, ProbeCallback done) = 0;

  // Ends a run in flight soon (its `done` still runs, critical "cancelled").
  // Called when the check goes away. Thread-safe.
  virtual void Cancel() = 0;
};

struct ProbeEnvironment {
  // Where Asio-based probes run their I/O and timers.
  boost::asio::any_io_executor executor;
  // Script checks are refused unless musterd runs with --enable-script-checks.
  bool enable_script_checks = false;
};

// Cuts `output` to kMaxCheckOutputBytes (noting the cut) and fills in
// `fallback` when it is empty.
std::string BoundedOutput(std::string output, std::string_view fallback);

// Where a TCP or gRPC check connects: its target, or the instance's address
// when it has none, as written ("[::1]:8080") and split.
struct DialTarget {
  std::string endpoint;
  std::string host;  // IPv6 without brackets
  uint16_t port = 0;
};
// InvalidArgument naming the check when that is not host:port with a port of
// 1..65535.
absl::StatusOr<DialTarget> DialTargetOf(const Check& check, const Instance& instance);

// A probe for `check` of `instance` (an active check: not kTtl).
// InvalidArgument for a target it cannot use; FailedPrecondition for a
// script check while script checks are disabled.
absl::StatusOr<std::shared_ptr<Probe>> MakeProbe(const Check& check, const Instance& instance,
                                                 const ProbeEnvironment& env);

// One factory per kind (http_probe.cc, tcp_probe.cc, grpc_probe.cc,
// script_probe.cc); MakeProbe picks among them.
absl::StatusOr<std::shared_ptr<Probe>> MakeHttpProbe(const Check& check, const Instance& instance,
                                                     const ProbeEnvironment& env);
absl::StatusOr<std::shared_ptr<Probe>> MakeTcpProbe(const Check& check, const Instance& instance,
                                                    const ProbeEnvironment& env);
absl::StatusOr<std::shared_ptr<Probe>> MakeGrpcProbe(const Check& check, const Instance& instance,
                                                     const ProbeEnvironment& env);
absl::StatusOr<std::shared_ptr<Probe>> MakeScriptProbe(const Check& check, const Instance& instance,
                                                       const ProbeEnvironment& env);

}  // namespace muster
