#include "core/json_codec.h"

#include <algorithm>

#include "core/duration.h"
#include "core/strings.h"
#include "core/validation.h"

namespace muster {
namespace json = boost::json;

json::object CheckToJson(const Check& c) {
  json::object o;
  o["id"] = c.id;
  o["type"] = ToString(c.type);
  if (c.IsReported()) {
    o["ttl"] = FormatDuration(c.ttl);
    o["deregister_critical_after"] = FormatDuration(c.deregister_critical_after);
  }
  if (c.type != CheckType::kTtl) {
    o["target"] = c.target;
    o["interval"] = FormatDuration(c.interval);
    o["timeout"] = FormatDuration(c.timeout);
    o["rise"] = c.rise;
    o["fall"] = c.fall;
    o["deregister_critical_after"] = FormatDuration(c.deregister_critical_after);
  }
  if (c.type == CheckType::kHttp) {
    json::object headers;
    for (const auto& [k, v] : c.headers) headers[k] = v;
    o["method"] = c.method;
    o["headers"] = std::move(headers);
    o["tls_skip_verify"] = c.tls_skip_verify;
  }
  if (c.type == CheckType::kGrpc) o["grpc_service"] = c.grpc_service;
  if (c.type == CheckType::kScript) {
    json::array args;
    for (const auto& a : c.args) args.emplace_back(a);
    o["args"] = std::move(args);
  }
  o["status"] = ToString(c.status);
  o["output"] = c.output;
  return o;
}

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
  if (!in.tags.empty()) o["tags"] = json::array(in.tags.begin(), in.tags.end());
  o["ttl_seconds"] = in.ttl_seconds;
  o["health"] = ToString(in.health);
  if (!in.checks.empty()) {
    json::array checks;
    checks.reserve(in.checks.size());
    for (const Check& c : in.checks) checks.push_back(CheckToJson(c));
    o["checks"] = std::move(checks);
  }
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

absl::StatusOr<std::map<std::string, std::string>> GetStringMap(const json::value& v,
                                                                std::string_view field) {
  if (!v.is_object()) return WrongType(field, "an object of strings");
  std::map<std::string, std::string> out;
  for (const auto& [k, val] : v.get_object()) {
    if (!val.is_string()) {
      return absl::InvalidArgumentError(
          StrCat(field, " value of \"", std::string_view(k), "\" must be a string"));
    }
    out.emplace(std::string(k), std::string(val.get_string()));
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> GetStringList(const json::value& v,
                                                       std::string_view field) {
  if (!v.is_array()) return WrongType(field, "an array of strings");
  std::vector<std::string> out;
  out.reserve(v.get_array().size());
  for (const auto& item : v.get_array()) {
    if (!item.is_string()) return WrongType(field, "an array of strings");
    out.emplace_back(item.get_string());
  }
  return out;
}

absl::StatusOr<std::chrono::milliseconds> GetDuration(const json::value& v, std::string_view field) {
  if (!v.is_string()) return WrongType(field, "a duration string such as \"10s\" or \"500ms\"");
  auto d = ParseDuration(v.get_string());
  if (!d.ok()) return absl::InvalidArgumentError(StrCat("field \"", field, "\": ", MessageOf(d.status())));
  return *d;
}

// Applies one field of a check object to `c`. `strict` refuses unknown
// fields; the registry's own fields (status, output) are read only when not
// strict.
absl::Status ApplyCheckField(Check& c, std::string_view key, const json::value& v, bool strict) {
  if (key == "id" || key == "target" || key == "method" || key == "grpc_service") {
    auto s = GetString(v, StrCat("checks.", key));
    if (!s.ok()) return s.status();
    (key == "id" ? c.id : key == "target" ? c.target : key == "method" ? c.method : c.grpc_service) =
        *std::move(s);
  } else if (key == "type") {
    auto s = GetString(v, "checks.type");
    if (!s.ok()) return s.status();
    auto type = ParseCheckType(*s);
    if (!type) return WrongType("checks.type", "one of \"http\", \"tcp\", \"grpc\", \"script\", \"ttl\"");
    c.type = *type;
  } else if (key == "interval" || key == "timeout" || key == "deregister_critical_after" ||
             key == "ttl") {
    auto d = GetDuration(v, StrCat("checks.", key));
    if (!d.ok()) return d.status();
    (key == "interval"  ? c.interval
     : key == "timeout" ? c.timeout
     : key == "ttl"     ? c.ttl
                        : c.deregister_critical_after) = *d;
  } else if (key == "rise" || key == "fall") {
    auto n = GetUnsigned(v, StrCat("checks.", key), UINT32_MAX);
    if (!n.ok()) return n.status();
    (key == "rise" ? c.rise : c.fall) = static_cast<uint32_t>(*n);
  } else if (key == "headers") {
    auto m = GetStringMap(v, "checks.headers");
    if (!m.ok()) return m.status();
    c.headers = *std::move(m);
  } else if (key == "tls_skip_verify") {
    if (!v.is_bool()) return WrongType("checks.tls_skip_verify", "true or false");
    c.tls_skip_verify = v.get_bool();
  } else if (key == "args") {
    auto args = GetStringList(v, "checks.args");
    if (!args.ok()) return args.status();
    c.args = *std::move(args);
  } else if (key == "status") {
    // In a registration, the state a new reported check starts in (the
    // registry's own for any other check, which sets it).
    if (!v.is_string() || (strict && !ParseHealth(v.get_string()))) {
      if (strict) return WrongType("checks.status", "\"passing\", \"warning\" or \"critical\"");
    } else {
      c.status = ParseHealth(v.get_string()).value_or(Health::kCritical);
    }
  } else if (key == "output") {
    if (!strict && v.is_string()) c.output = std::string(v.get_string());
  } else if (strict) {
    return absl::InvalidArgumentError(StrCat("unknown field \"checks.", key, "\""));
  }
  return absl::OkStatus();
}

// Puts the fields that `c`'s type does not use back to their defaults. They
// are not written (CheckToJson), so a registration that kept them would
// differ from the instance the store reads back: after a restart, sending
// the same body again would count as a change and reset the check's state.
void ClearFieldsOfOtherTypes(Check& c) {
  const Check unset;
  if (c.type == CheckType::kTtl) {
    c.target = unset.target;
    c.interval = unset.interval;
    c.timeout = unset.timeout;
    c.rise = unset.rise;
    c.fall = unset.fall;
    if (c.IsLease()) c.deregister_critical_after = unset.deregister_critical_after;
  } else {
    c.ttl = unset.ttl;
  }
  // Only a reported check starts from the status it is registered with.
  if (!c.IsReported()) c.status = unset.status;
  if (c.type != CheckType::kHttp) {
    c.method = unset.method;
    c.headers.clear();
    c.tls_skip_verify = unset.tls_skip_verify;
  }
  if (c.type != CheckType::kGrpc) c.grpc_service.clear();
  if (c.type != CheckType::kScript) c.args.clear();
}

absl::StatusOr<std::vector<Check>> GetChecks(const json::value& v, bool strict) {
  if (!v.is_array()) return WrongType("checks", "an array of check objects");
  std::vector<Check> out;
  for (const auto& item : v.get_array()) {
    if (!item.is_object()) return WrongType("checks", "an array of check objects");
    Check c;
    bool typed = false;
    for (const auto& [k, val] : item.get_object()) {
      if (auto s = ApplyCheckField(c, k, val, strict); !s.ok()) return s;
      typed = typed || k == "type";
    }
    if (strict && !typed) return absl::InvalidArgumentError("field \"checks.type\" is required");
    if (strict) ClearFieldsOfOtherTypes(c);
    if (c.id.empty()) c.id = std::string(ToString(c.type));
    out.push_back(std::move(c));
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
    auto m = GetStringMap(v, "metadata");
    if (!m.ok()) return m.status();
    in.metadata = *std::move(m);
  } else if (key == "tags") {
    auto tags = GetStringList(v, "tags");
    if (!tags.ok()) return tags.status();
    in.tags = *std::move(tags);
  } else if (key == "checks") {
    auto checks = GetChecks(v, strict);
    if (!checks.ok()) return checks.status();
    in.checks = *std::move(checks);
  } else if (key == "create_revision" || key == "modify_revision") {
    if (!strict) {
      auto n = GetUnsigned(v, key, UINT64_MAX);
      if (!n.ok()) return n.status();
      (key == "create_revision" ? in.create_revision : in.modify_revision) = *n;
    }
  } else if (key == "health") {
    if (!strict && v.is_string()) in.health = ParseHealth(v.get_string()).value_or(Health::kCritical);
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
  // The document lives only while it is read into the Instance: allocate it
  // from the stack (spilling to the heap for large ones), not node by node.
  unsigned char scratch[4096];
  json::monotonic_resource arena(scratch, sizeof(scratch));
  boost::system::error_code ec;
  json::value v = json::parse(text, ec, &arena);
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
  unsigned char scratch[4096];  // as in ParseInstance
  json::monotonic_resource arena(scratch, sizeof(scratch));
  boost::system::error_code ec;
  json::value v = json::parse(body, ec, &arena);
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
  // Active and reported checks alone keep an instance registered unless it
  // asks for a lease too (a lease check or an explicit ttl_seconds).
  const bool active = std::any_of(in.checks.begin(), in.checks.end(),
                                  [](const Check& c) { return !c.IsLease(); });
  const bool lease = std::any_of(in.checks.begin(), in.checks.end(),
                                 [](const Check& c) { return c.IsLease(); });
  if (active && !lease && !o.contains("ttl_seconds")) in.ttl_seconds = 0;
  if (auto s = ValidateInstance(in, limits); !s.ok()) return s;
  return in;
}

absl::StatusOr<CheckReport> ParseCheckReport(std::string_view body, const Limits& limits) {
  if (body.size() > limits.max_body_bytes) {
    return absl::InvalidArgumentError(StrCat("body is over ", limits.max_body_bytes, " bytes"));
  }
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) return absl::InvalidArgumentError(StrCat("bad JSON: ", ec.message()));
  if (!v.is_object()) return absl::InvalidArgumentError("body must be a JSON object");
  CheckReport report;
  bool has_status = false;
  for (const auto& [k, val] : v.get_object()) {
    if (k == "status") {
      std::optional<Health> h = val.is_string() ? ParseHealth(val.get_string()) : std::nullopt;
      if (!h) return WrongType("status", "\"passing\", \"warning\" or \"critical\"");
      report.status = *h;
      has_status = true;
    } else if (k == "output") {
      auto s = GetString(val, "output");
      if (!s.ok()) return s.status();
      report.output = *std::move(s);
    } else {
      return absl::InvalidArgumentError(StrCat("unknown field \"", std::string_view(k), "\""));
    }
  }
  if (!has_status) return absl::InvalidArgumentError("field \"status\" is required");
  return report;
}

}  // namespace muster
