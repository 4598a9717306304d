// JSON encoding of instances, shared by musterd, musterctl and the SDK.
#pragma once

#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "muster/instance.h"
#include "core/limits.h"

namespace muster {

boost::json::object InstanceToJson(const Instance& instance);
// One check as in an instance's "checks" (spec, status and output).
boost::json::object CheckToJson(const Check& check);
std::string SerializeInstance(const Instance& instance);

// Decodes an instance as the registry writes it (lists, events, the store).
// Lenient: fields it does not know are ignored, missing fields keep defaults.
absl::StatusOr<Instance> InstanceFromJson(const boost::json::value& json);
absl::StatusOr<Instance> ParseInstance(std::string_view text);

// Decodes the body of a register request for the instance at ns/service/id
// (taken from the path) and validates it. Strict: wrong types, unknown fields
// and an id/service/namespace that contradicts the path are InvalidArgument.
// The read-only fields the registry itself fills in (health, create_revision,
// modify_revision) are accepted and ignored, so a listed instance can be sent back.
absl::StatusOr<Instance> ParseRegistration(std::string_view body, std::string_view ns,
                                           std::string_view service, std::string_view id,
                                           const Limits& limits);

// A report on a reported check: {"status": "passing"|"warning"|"critical",
// "output": "..."} ("output" optional). Strict, as a registration is.
struct CheckReport {
  Health status = Health::kPassing;
  std::string output;
};
absl::StatusOr<CheckReport> ParseCheckReport(std::string_view body, const Limits& limits);

}  // namespace muster
