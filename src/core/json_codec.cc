#include "core/json_codec.h"

#include "core/strings.h"
#include "core/validation.h"

namespace muster {
namespace json = boost::json;

json::object InstanceToJson(const Instance& in) {
  json::object meta;
  for (const auto& [k, v] : in.metadata) meta[k] = v;
  json::object o;
  o["id"] = in.id;
  o["service"] = in.service;
  o["namespace"] = in.ns;
  o["version"] = in.version;
  o["address"] = in.address;
  o["status"] = ToString(in.status);
  o["weight"] = in.weight;
  o["metadata"] = std::move(meta);
  o["ttl_seconds"] = in.ttl_seconds;
  o["health"] = ToString(in.health);
  o["create_revision"] = in.create_revision;
  o["modify_revision"] = in.modify_revision;
  return o;
}

std::string SerializeInstance(const Instance& in) { return json::serialize(InstanceToJson(in)); }

namespace {

absl::Status WrongType(std::string_view field, std::string_view want) {
  return absl::InvalidArgumentError(StrCat("field \"", field, "\" must be ", want));
}

absl::StatusOr<std::string> GetString(const json::value& v, std::string_view field) {
  if (!v.is_string()) return WrongType(field, "a string");
  return std::string(v.get_string());
}

// An integer in [0, max]; doubles with an integral value are refused too, so
// that "weight": 1.5 and "weight": 1.0 read the same way: as a wrong type.
absl::StatusOr<uint64_t> GetUnsigned(const json::value& v, std::string_view field, uint64_t max) {
  uint64_t out;
  if (v.is_uint64()) {
    out = v.get_uint64();
  } else if (v.is_int64() && v.get_int64() >= 0) {
    out = static_cast<uint64_t>(v.get_int64());
  } else if (v.is_int64()) {
    return absl::InvalidArgumentError(StrCat("field \"", field, "\" must not be negative"));
  } else {
    return WrongType(field, "an integer");
  }
  if (out > max) {
    return absl::InvalidArgumentError(StrCat("field \"", field, "\" is out of range"));
  }
  return out;
}

absl::StatusOr<std::map<std::string, std::string>> GetMetadata(const json::value& v) {
  if (!v.is_object()) return WrongType("metadata", "an object of strings");
  std::map<std::string, std::string> out;
  for (const auto& [k, val] : v.get_object()) {
    if (!val.is_string()) {
      return absl::InvalidArgumentError(
          StrCat("metadata value of \"", std::string_view(k), "\" must be a string"));
    }
    out.emplace(std::string(k), std::string(val.get_string()));
  }
  return out;
}

// Applies one field of `o` to `in`. `strict` refuses unknown fields.
absl::Status ApplyField(Instance& in, std::string_view key, const json::value& v, bool strict) {
  if (key == "id" || key == "service" || key == "namespace" || key == "version" ||
      key == "address") {
    auto s = GetString(v, key);
    if (!s.ok()) return s.status();
    if (key == "id") in.id = *std::move(s);
    if (key == "service") in.service = *std::move(s);
    if (key == "namespace") in.ns = *std::move(s);
    if (key == "version") in.version = *std::move(s);
    if (key == "address") in.address = *std::move(s);
  } else if (key == "status") {
    auto s = GetString(v, key);
    if (!s.ok()) return s.status();
    auto status = ParseInstanceStatus(*s);
    if (!status) return WrongType(key, "\"enabled\" or \"disabled\"");
    in.status = *status;
  } else if (key == "weight" || key == "ttl_seconds") {
    auto n = GetUnsigned(v, key, UINT32_MAX);
    if (!n.ok()) return n.status();
    (key == "weight" ? in.weight : in.ttl_seconds) = static_cast<uint32_t>(*n);
  } else if (key == "metadata") {
    auto m = GetMetadata(v);
    if (!m.ok()) return m.status();
    in.metadata = *std::move(m);
  } else if (key == "create_revision" || key == "modify_revision") {
    if (!strict) {
      auto n = GetUnsigned(v, key, UINT64_MAX);
      if (!n.ok()) return n.status();
      (key == "create_revision" ? in.create_revision : in.modify_revision) = *n;
    }
  } else if (key == "health") {
    if (!strict && v.is_string()) {
      std::string_view h = v.get_string();
      in.health = h == "passing" ? Health::kPassing
                  : h == "warning" ? Health::kWarning
                                   : Health::kCritical;
    }
  } else if (strict) {
    return absl::InvalidArgumentError(StrCat("unknown field \"", key, "\""));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Instance> InstanceFromJson(const json::value& v) {
  if (!v.is_object()) return absl::InvalidArgumentError("instance must be a JSON object");
  Instance in;
  for (const auto& [k, val] : v.get_object()) {
    if (auto s = ApplyField(in, k, val, /*strict=*/false); !s.ok()) return s;
  }
  return in;
}

absl::StatusOr<Instance> ParseInstance(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return absl::InvalidArgumentError(StrCat("bad JSON: ", ec.message()));
  return InstanceFromJson(v);
}

absl::StatusOr<Instance> ParseRegistration(std::string_view body, std::string_view ns,
                                           std::string_view service, std::string_view id,
                                           const Limits& limits) {
  if (body.size() > limits.max_body_bytes) {
    return absl::InvalidArgumentError(
        StrCat("body is over ", limits.max_body_bytes, " bytes"));
  }
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) return absl::InvalidArgumentError(StrCat("bad JSON: ", ec.message()));
  if (!v.is_object()) return absl::InvalidArgumentError("body must be a JSON object");
  Instance in;
  for (const auto& [k, val] : v.get_object()) {
    if (auto s = ApplyField(in, k, val, /*strict=*/true); !s.ok()) return s;
  }
  const json::object& o = v.get_object();
  auto contradicts = [&](std::string_view field, const std::string& got, std::string_view want) {
    return o.contains(field) && got != want;
  };
  if (contradicts("id", in.id, id)) {
    return absl::InvalidArgumentError("field \"id\" does not match the id in the path");
  }
  if (contradicts("service", in.service, service)) {
    return absl::InvalidArgumentError("field \"service\" does not match the service in the path");
  }
  if (contradicts("namespace", in.ns, ns)) {
    return absl::InvalidArgumentError("field \"namespace\" does not match ?namespace=");
  }
  if (!o.contains("address")) return absl::InvalidArgumentError("field \"address\" is required");
  in.id = std::string(id);
  in.service = std::string(service);
  in.ns = std::string(ns);
  if (auto s = ValidateInstance(in, limits); !s.ok()) return s;
  return in;
}

std::string_view ErrorCodeName(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return "ok";
    case absl::StatusCode::kCancelled:
      return "cancelled";
    case absl::StatusCode::kInvalidArgument:
      return "invalid_argument";
    case absl::StatusCode::kDeadlineExceeded:
      return "deadline_exceeded";
    case absl::StatusCode::kNotFound:
      return "not_found";
    case absl::StatusCode::kAlreadyExists:
      return "already_exists";
    case absl::StatusCode::kPermissionDenied:
      return "permission_denied";
    case absl::StatusCode::kResourceExhausted:
      return "resource_exhausted";
    case absl::StatusCode::kFailedPrecondition:
      return "failed_precondition";
    case absl::StatusCode::kAborted:
      return "aborted";
    case absl::StatusCode::kOutOfRange:
      return "out_of_range";
    case absl::StatusCode::kUnimplemented:
      return "unimplemented";
    case absl::StatusCode::kUnavailable:
      return "unavailable";
    case absl::StatusCode::kDataLoss:
      return "data_loss";
    case absl::StatusCode::kUnauthenticated:
      return "unauthenticated";
    default:
      return "internal";
  }
}

std::string ErrorBody(std::string_view code, std::string_view message) {
  json::object err;
  err["code"] = code;
  err["message"] = message;
  json::object o;
  o["error"] = std::move(err);
  return json::serialize(o);
}

}  // namespace muster
