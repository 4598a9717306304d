#include "server/health/probe.h"

#include "core/strings.h"
#include "core/validation.h"

namespace muster {

std::string BoundedOutput(std::string output, std::string_view fallback) {
  if (output.empty()) return std::string(fallback);
  constexpr std::string_view kCut = "\n... (output cut)";
  if (output.size() > kMaxCheckOutputBytes) {
    size_t keep = kMaxCheckOutputBytes - kCut.size();
    // Do not split a UTF-8 sequence.
    while (keep > 0 && (static_cast<unsigned char>(output[keep]) & 0xC0) == 0x80) --keep;
    output.resize(keep);
    output += kCut;
  }
  return output;
}

absl::StatusOr<DialTarget> DialTargetOf(const Check& check, const Instance& instance) {
  DialTarget target;
  target.endpoint = check.target.empty() ? instance.address : check.target;
  auto host_port = SplitHostPort(target.endpoint, AddressUse::kDial);
  if (!host_port.ok()) {
    return absl::InvalidArgumentError(
        StrCat("check \"", check.id, "\": ", MessageOf(host_port.status())));
  }
  target.host = std::move(host_port->first);
  target.port = host_port->second;
  return target;
}

absl::StatusOr<std::shared_ptr<Probe>> MakeProbe(const Check& check, const Instance& instance,
                                                 const ProbeEnvironment& env) {
  switch (check.type) {
    case CheckType::kHttp:
      return MakeHttpProbe(check, instance, env);
    case CheckType::kTcp:
      return MakeTcpProbe(check, instance, env);
    case CheckType::kGrpc:
      return MakeGrpcProbe(check, instance, env);
    case CheckType::kScript:
      if (!env.enable_script_checks) {
        return absl::FailedPreconditionError(
            "script checks are disabled (musterd --enable-script-checks)");
      }
      return MakeScriptProbe(check, instance, env);
    case CheckType::kTtl:
      break;
  }
  return absl::InvalidArgumentError(StrCat("check \"", check.id, "\" is not an active check"));
}

}  // namespace muster
