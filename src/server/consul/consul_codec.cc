// The Consul codec (consul_codec.h). The rules below are the ones
// docs/consul.md lists.
//
// Reading a body:
// - Field names match lower-cased and without '_' ("Name", "name", "NAME";
//   "DeregisterCriticalServiceAfter", "deregister_critical_service_after").
//   Unknown fields are ignored; a null field reads as absent; a field given
//   twice in two spellings reads as the last one. Meta keys and Header
//   names are the user's and keep their spelling.
// - A field of the wrong type is refused ("Port": "80" included, as Consul
//   does). Integers may be written as numbers with an integral value (1e3).
//   Durations are Go strings ("10s", "1m30s") or integers of nanoseconds.
// - The service: Name (required; "Service", the name's field in the AgentService
//   and catalog shapes, is read when there is no Name), ID (default Name),
//   Tags (duplicates dropped, the first kept), Address (a host without port;
//   an IPv6 literal gets brackets; default: the agent's address, or the
//   catalog registration's), Port (required, 1..65535), Meta (its "version"
//   becomes the instance's version when it is a valid name),
//   Weights.Passing (the weight; Warning ignored; no Weights: 100),
//   Namespace (refused unless empty or the request's). Kind other than "",
//   a Connect or Proxy with a field other than a zero value (null, false, 0,
//   "", [], {}): refused. EnableTagOverride, TaggedAddresses and the rest:
//   ignored.
// - A check (Check, unless it is {}, then each of Checks): CheckID or ID (default
//   DefaultCheckId), exactly one of TTL (a reported ttl check starting in
//   Status, critical unless given), HTTP (Method, default GET; Header, each
//   name's values joined with ", "; TLSSkipVerify), TCP, GRPC ("host:port" or
//   "host:port/service") and Args or ScriptArgs (the program, then its
//   arguments). Interval (required except for TTL, refused with it),
//   Timeout (default 10s), DeregisterCriticalServiceAfter,
//   SuccessBeforePassing and FailuresBeforeCritical (rise and fall, at
//   least 1: Consul's default 0 moves at once). Refused: H2PING, UDP,
//   DockerContainerID, AliasService, AliasNode, OSService, Script,
//   GRPCUseTLS true and an HTTP Body, none of which a Muster check can hold;
//   a Status other than passing, warning or critical. Name, Notes,
//   ServiceID, FailuresBeforeWarning and the rest: ignored.
// - A catalog registration: Service (required, the fields above), Address
//   (the service's default address), Check and Checks (with a ServiceID
//   that is the service's ID, their type fields either in the check or in
//   its Definition; without a ServiceID they are node checks: refused).
//
// Writing answers: Address and Port split from the instance's address (an
// IPv6 host without brackets), Meta with the version put back, Weights
// {Passing: weight, Warning: 1}, the indexes from the revisions. The node
// has no revisions of its own: its indexes are 0.
#include "server/consul/consul_codec.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <utility>

#include "core/duration.h"
#include "core/strings.h"
#include "core/utf8.h"
#include "core/validation.h"

namespace muster::consul {
namespace json = boost::json;
using std::chrono::milliseconds;

namespace {

constexpr std::string_view kDecodeFailed = "Request decode failed: ";
// Consul's default timeout of an active check.
constexpr milliseconds kDefaultCheckTimeout = std::chrono::seconds(10);
// The longest duration read, in nanoseconds (ParseDuration's bound too).
constexpr int64_t kMaxDurationNanos = 1'000'000'000'000'000'000;

// 64-bit FNV-1a: stable across runs and builds, unlike std::hash.
uint64_t Fnv1a(std::string_view data, uint64_t basis = 14695981039346656037ull) {
  uint64_t h = basis;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// `value` as `digits` lower-case hex digits (its low bits).
std::string Hex(uint64_t value, int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(static_cast<size_t>(digits), '0');
  for (int i = digits - 1; i >= 0; --i) {
    out[static_cast<size_t>(i)] = kHex[value & 15];
    value >>= 4;
  }
  return out;
}

// A field name as Consul matches it: ASCII lower case, '_' dropped.
std::string FieldKey(std::string_view name) {
  std::string key;
  key.reserve(name.size());
  for (char c : name) {
    if (c == '_') continue;
    key.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
  }
  return key;
}

// An integer: a JSON integer, or a number with an integral value as a
// JavaScript client may write one. Values beyond int64 are clamped to its
// range, which every caller refuses as out of range. nullopt for any other
// value.
std::optional<int64_t> AsInteger(const json::value& v) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64()) {
    const uint64_t u = v.get_uint64();
    return u > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(u);
  }
  if (v.is_double()) {
    const double d = v.get_double();
    if (!std::isfinite(d) || d != std::trunc(d)) return std::nullopt;
    if (d >= 9.2e18) return INT64_MAX;
    if (d <= -9.2e18) return INT64_MIN;
    return static_cast<int64_t>(d);
  }
  return std::nullopt;
}

// Whether `v` holds more than Go's zero value of its type would (null,
// false, 0, "", an empty array or object): what a Go client sends for a
// field it leaves unset.
bool Meaningful(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return false;
    case json::kind::bool_:
      return v.get_bool();
    case json::kind::int64:
      return v.get_int64() != 0;
    case json::kind::uint64:
      return v.get_uint64() != 0;
    case json::kind::double_:
      return v.get_double() != 0;
    case json::kind::string:
      return !v.get_string().empty();
    case json::kind::array:
      return !v.get_array().empty();
    case json::kind::object:
      return !v.get_object().empty();
  }
  return true;
}

// Whether an object has a field that means something (Meaningful).
bool AnyMeaningful(const json::object& object) {
  return std::any_of(object.begin(), object.end(),
                     [](const json::key_value_pair& field) { return Meaningful(field.value()); });
}

// The fields of one JSON object of a body, under Consul's matching. A read
// of a field of the wrong type records the first such error and answers
// nothing, so that a caller reads every field it wants and tests ok() once.
class FieldReader {
 public:
  // `where` prefixes field names in messages ("", "Service.", "Checks[1].").
  FieldReader(const json::object& object, std::string where) : where_(std::move(where)) {
    Merge(object);
  }

  // Adds the fields of `object`, replacing those of the same key.
  void Merge(const json::object& object) {
    for (const auto& [k, v] : object) {
      std::string key = FieldKey(k);
      if (v.is_null()) {
        fields_.erase(key);
      } else {
        fields_[std::move(key)] = &v;
      }
    }
  }

  bool ok() const { return status_.ok(); }
  const absl::Status& status() const { return status_; }

  // Whether the field is given (not null).
  bool Has(std::string_view name) const { return Find(name) != nullptr; }

  // Whether the field is given with a value that means something
  // (Meaningful).
  bool Given(std::string_view name) const {
    const json::value* v = Find(name);
    return v != nullptr && Meaningful(*v);
  }

  std::optional<std::string> String(std::string_view name) {
    const json::value* v = Find(name);
    if (v == nullptr) return std::nullopt;
    if (!v->is_string()) return WrongType(name, "a string");
    return std::string(v->get_string());
  }

  std::optional<bool> Bool(std::string_view name) {
    const json::value* v = Find(name);
    if (v == nullptr) return std::nullopt;
    if (!v->is_bool()) return WrongType(name, "true or false");
    return v->get_bool();
  }

  std::optional<int64_t> Integer(std::string_view name) {
    const json::value* v = Find(name);
    if (v == nullptr) return std::nullopt;
    std::optional<int64_t> n = AsInteger(*v);
    if (!n) return WrongType(name, "an integer");
    return n;
  }

  // A Go duration string or an integer of nanoseconds, rounded to
  // milliseconds. Negative durations are refused.
  std::optional<milliseconds> Duration(std::string_view name) {
    const json::value* v = Find(name);
    if (v == nullptr) return std::nullopt;
    if (v->is_string()) {
      absl::StatusOr<milliseconds> d = ParseDuration(v->get_string());
      if (!d.ok()) return Fail(StrCat(where_, name, ": ", MessageOf(d.status())));
      return *d;
    }
    std::optional<int64_t> nanos = AsInteger(*v);
    if (!nanos) {
      return WrongType(name, "a duration such as \"10s\" or an integer of nanoseconds");
    }
    if (*nanos < 0) return Fail(StrCat(where_, name, " must not be negative"));
    if (*nanos > kMaxDurationNanos) return Fail(StrCat(where_, name, " is out of range"));
    return milliseconds((*nanos + 500'000) / 1'000'000);
  }

  std::optional<std::vector<std::string>> Strings(std::string_view name) {
    const json::value* v = Find(name);
    if (v == nullptr) return std::nullopt;
    if (!v->is_array()) return WrongType(name, "an array of strings");
    std::vector<std::string> out;
    out.reserve(v->get_array().size());
    for (const json::value& item : v->get_array()) {
      if (!item.is_string()) return WrongType(name, "an array of strings");
      out.emplace_back(item.get_string());
    }
    return out;
  }

  std::optional<std::map<std::string, std::string>> StringMap(std::string_view name) {
    const json::value* v = Find(name);
    if (v == nullptr) return std::nullopt;
    if (!v->is_object()) return WrongType(name, "an object of strings");
    std::map<std::string, std::string> out;
    for (const auto& [k, item] : v->get_object()) {
      if (!item.is_string()) return WrongType(name, "an object of strings");
      out[std::string(k)] = std::string(item.get_string());
    }
    return out;
  }

  // Consul's Header: each name with an array of values, joined with ", "
  // (a name without values is left out).
  std::optional<std::map<std::string, std::string>> Header(std::string_view name) {
    const json::value* v = Find(name);
    if (v == nullptr) return std::nullopt;
    constexpr std::string_view kWant = "an object of arrays of strings";
    if (!v->is_object()) return WrongType(name, kWant);
    std::map<std::string, std::string> out;
    for (const auto& [k, values] : v->get_object()) {
      if (!values.is_array()) return WrongType(name, kWant);
      const json::array& list = values.get_array();
      std::string joined;
      for (size_t i = 0; i < list.size(); ++i) {
        if (!list[i].is_string()) return WrongType(name, kWant);
        if (i > 0) joined += ", ";
        joined.append(list[i].get_string());
      }
      if (!list.empty()) out[std::string(k)] = std::move(joined);
    }
    return out;
  }

  const json::object* Object(std::string_view name) {
    return Typed(name, "an object", &json::value::if_object);
  }

  const json::array* Array(std::string_view name) {
    return Typed(name, "an array", &json::value::if_array);
  }

 private:
  // The field as a T (if_object, if_array), or null: absent, or of another
  // type (then refused as `what`).
  template <typename T>
  const T* Typed(std::string_view name, std::string_view what,
                 const T* (json::value::*as)() const noexcept) {
    const json::value* v = Find(name);
    if (v == nullptr) return nullptr;
    const T* typed = (v->*as)();
    if (typed == nullptr) WrongType(name, what);
    return typed;
  }

  const json::value* Find(std::string_view name) const {
    auto it = fields_.find(FieldKey(name));
    return it == fields_.end() ? nullptr : it->second;
  }

  // Records `message` unless an error came first; answers nothing.
  std::nullopt_t Fail(std::string message) {
    if (status_.ok()) status_ = absl::InvalidArgumentError(message);
    return std::nullopt;
  }

  std::nullopt_t WrongType(std::string_view name, std::string_view want) {
    return Fail(StrCat(kDecodeFailed, where_, name, " must be ", want));
  }

  std::map<std::string, const json::value*, std::less<>> fields_;
  std::string where_;
  absl::Status status_;
};

// Parses `body` into `out` (allocated from `arena`) as a JSON object.
absl::Status ParseObject(std::string_view body, const Limits& limits,
                         json::monotonic_resource& arena, json::value& out) {
  if (body.size() > limits.max_body_bytes) {
    return absl::InvalidArgumentError(
        StrCat("Request body is over ", limits.max_body_bytes, " bytes"));
  }
  boost::system::error_code ec;
  out = json::parse(body, ec, &arena);
  if (ec) return absl::InvalidArgumentError(StrCat(kDecodeFailed, ec.message()));
  if (!out.is_object()) {
    return absl::InvalidArgumentError(StrCat(kDecodeFailed, "the body must be a JSON object"));
  }
  return absl::OkStatus();
}

// The host part of a Muster address for a Consul Address, a host without
// port: an IPv6 literal (two colons or more) gets brackets, whether it came
// with them or not. A host with one colon is a host:port: refused.
absl::StatusOr<std::string> BracketedHost(std::string_view host, std::string_view field) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const auto colons = std::count(host.begin(), host.end(), ':');
  if (colons == 0) return std::string(host);
  if (colons == 1) {
    return absl::InvalidArgumentError(
        StrCat(field, " must be a host name or an IP address, without a port"));
  }
  return StrCat("[", host, "]");
}

// Host and port of an instance's address, the host without brackets. An
// address SplitHostPort does not take (over its default length, which a
// musterd with raised limits may hold) is split at its last ':'.
std::pair<std::string, uint16_t> HostPort(std::string_view address) {
  absl::StatusOr<std::pair<std::string, uint16_t>> split =
      SplitHostPort(address, AddressUse::kDial);
  if (split.ok()) return *std::move(split);
  const size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) return {std::string(address), 0};
  std::string_view host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  uint16_t port = 0;
  std::from_chars(address.data() + colon + 1, address.data() + address.size(), port);
  return {std::string(host), port};
}

// A check object of a body, with where it sits (for messages).
struct CheckSource {
  const json::object* object;
  std::string where;  // "Check", "Checks[2]"
  bool catalog;       // a catalog registration's: ServiceID and Definition are read
};

absl::Status InvalidCheck(const CheckSource& src, std::string_view why) {
  return absl::InvalidArgumentError(StrCat("Invalid check ", src.where, ": ", why));
}

// The check `src` defines, the `index`th (from 0) of the `count` checks of
// service `service_id`.
absl::StatusOr<Check> ParseCheck(const CheckSource& src, std::string_view service_id, size_t index,
                                 size_t count, const Limits& limits) {
  FieldReader r(*src.object, StrCat(src.where, "."));
  if (src.catalog) {
    std::optional<std::string> owner = r.String("ServiceID");
    if (!r.ok()) return r.status();
    if (owner.value_or("").empty()) {
      return InvalidCheck(src, "node checks (without a ServiceID) are not supported by this "
                               "registry, which keeps services, not nodes");
    }
    if (*owner != service_id) {
      return InvalidCheck(src, StrCat("its ServiceID \"", Utf8Prefix(*owner, 128),
                                      "\" is not the registered service's ID"));
    }
    if (const json::object* definition = r.Object("Definition")) r.Merge(*definition);
  }
  std::optional<std::string> id = r.Has("CheckID") ? r.String("CheckID") : r.String("ID");
  std::optional<std::string> status = r.String("Status");
  std::optional<milliseconds> ttl = r.Duration("TTL");
  std::optional<std::string> http = r.String("HTTP");
  std::optional<std::string> tcp = r.String("TCP");
  std::optional<std::string> grpc = r.String("GRPC");
  std::optional<std::vector<std::string>> args =
      r.Has("ScriptArgs") ? r.Strings("ScriptArgs") : r.Strings("Args");
  std::optional<milliseconds> interval = r.Duration("Interval");
  std::optional<milliseconds> timeout = r.Duration("Timeout");
  std::optional<milliseconds> deregister = r.Duration("DeregisterCriticalServiceAfter");
  std::optional<std::string> method = r.String("Method");
  std::optional<std::map<std::string, std::string>> header = r.Header("Header");
  std::optional<std::string> body = r.String("Body");
  std::optional<bool> tls_skip_verify = r.Bool("TLSSkipVerify");
  std::optional<bool> grpc_use_tls = r.Bool("GRPCUseTLS");
  std::optional<int64_t> rise = r.Integer("SuccessBeforePassing");
  std::optional<int64_t> fall = r.Integer("FailuresBeforeCritical");
  if (!r.ok()) return r.status();

  for (std::string_view unsupported : {"H2PING", "UDP", "DockerContainerID", "AliasService",
                                       "AliasNode", "OSService", "Script"}) {
    if (r.Given(unsupported)) {
      return InvalidCheck(src, StrCat(unsupported, " checks are not supported by this registry",
                                      unsupported == "Script" ? " (Args checks are)" : ""));
    }
  }
  const bool is_ttl = ttl.has_value() && ttl->count() > 0;
  const bool is_http = !http.value_or("").empty();
  const bool is_tcp = !tcp.value_or("").empty();
  const bool is_grpc = !grpc.value_or("").empty();
  const bool is_script = args.has_value() && !args->empty();
  const int types = is_ttl + is_http + is_tcp + is_grpc + is_script;
  if (types == 0) {
    return InvalidCheck(src, "a check needs one of TTL, HTTP, TCP, GRPC or Args");
  }
  if (types > 1) {
    return InvalidCheck(src, "a check has only one of TTL, HTTP, TCP, GRPC and Args");
  }
  std::optional<Health> initial;
  if (!status.value_or("").empty()) {
    initial = ParseCheckStatus(*status);
    if (!initial) {
      return InvalidCheck(src, "Status for checks must be 'passing', 'warning' or 'critical'");
    }
  }
  const bool has_interval = interval.has_value() && interval->count() > 0;

  Check c;
  c.id = id.value_or("").empty() ? DefaultCheckId(service_id, index, count) : *std::move(id);
  c.deregister_critical_after = deregister.value_or(milliseconds(0));
  if (is_ttl) {
    if (has_interval) return InvalidCheck(src, "Interval and TTL cannot both be specified");
    c.type = CheckType::kTtl;
    c.ttl = *ttl;
    c.status = initial.value_or(Health::kCritical);
    return c;
  }
  if (!has_interval) {
    return InvalidCheck(src, "Interval must be > 0 for Script, HTTP, H2PING, TCP or UDP checks");
  }
  c.interval = *interval;
  c.timeout = timeout.has_value() && timeout->count() > 0 ? *timeout : kDefaultCheckTimeout;
  // Consul moves after n results (0: at once); a Muster check after
  // max(1, n).
  auto threshold = [&](std::string_view name, std::optional<int64_t> given,
                       uint32_t& field) -> absl::Status {
    const int64_t n = given.value_or(0);
    if (n < 0 || static_cast<uint64_t>(n) > limits.max_check_threshold) {
      return InvalidCheck(src, StrCat(name, " must be 0..", limits.max_check_threshold));
    }
    field = std::max<uint32_t>(1, static_cast<uint32_t>(n));
    return absl::OkStatus();
  };
  if (auto s = threshold("SuccessBeforePassing", rise, c.rise); !s.ok()) return s;
  if (auto s = threshold("FailuresBeforeCritical", fall, c.fall); !s.ok()) return s;
  if (is_http) {
    if (!body.value_or("").empty()) {
      return InvalidCheck(src, "an HTTP check with a Body is not supported by this registry");
    }
    c.type = CheckType::kHttp;
    c.target = *std::move(http);
    if (!method.value_or("").empty()) c.method = *std::move(method);
    if (header) c.headers = *std::move(header);
    c.tls_skip_verify = tls_skip_verify.value_or(false);
  } else if (is_tcp) {
    c.type = CheckType::kTcp;
    c.target = *std::move(tcp);
  } else if (is_grpc) {
    if (grpc_use_tls.value_or(false)) {
      return InvalidCheck(src, "GRPCUseTLS is not supported by this registry: its gRPC checks "
                               "use plaintext");
    }
    c.type = CheckType::kGrpc;
    const size_t slash = grpc->find('/');
    c.target = grpc->substr(0, slash);
    if (slash != std::string::npos) c.grpc_service = grpc->substr(slash + 1);
  } else {
    c.type = CheckType::kScript;
    c.target = args->front();
    c.args.assign(args->begin() + 1, args->end());
  }
  return c;
}

// The instance the service object `service` defines. `where` prefixes its
// fields in messages; `default_address` is the Address when it gives none;
// `catalog_checks` are a catalog registration's checks, after the
// service's own.
absl::StatusOr<Instance> ParseService(const json::object& service, std::string where,
                                      std::string_view ns, std::string_view default_address,
                                      const std::vector<CheckSource>& catalog_checks,
                                      const Limits& limits) {
  FieldReader r(service, where);
  std::optional<std::string> name = r.Has("Name") ? r.String("Name") : r.String("Service");
  std::optional<std::string> id = r.String("ID");
  std::optional<std::string> kind = r.String("Kind");
  const json::object* connect = r.Object("Connect");
  const json::object* proxy = r.Object("Proxy");
  std::optional<std::string> given_ns = r.String("Namespace");
  std::optional<std::vector<std::string>> tags = r.Strings("Tags");
  std::optional<std::string> address = r.String("Address");
  std::optional<int64_t> port = r.Integer("Port");
  std::optional<std::map<std::string, std::string>> meta = r.StringMap("Meta");
  const json::object* weights = r.Object("Weights");
  const json::object* check = r.Object("Check");
  const json::array* checks = r.Array("Checks");
  if (!r.ok()) return r.status();

  if (name.value_or("").empty()) return absl::InvalidArgumentError("Missing service name");
  auto unsupported = [&](std::string_view what) {
    return absl::InvalidArgumentError(StrCat(where, what, " is not supported by this registry"));
  };
  if (!kind.value_or("").empty()) {
    return unsupported(StrCat("Kind \"", Utf8Prefix(*kind, 64), "\""));
  }
  if (connect != nullptr && AnyMeaningful(*connect)) return unsupported("Connect");
  if (proxy != nullptr && AnyMeaningful(*proxy)) return unsupported("Proxy");
  if (!given_ns.value_or("").empty() && *given_ns != ns) {
    return absl::InvalidArgumentError(
        StrCat(where, "Namespace \"", Utf8Prefix(*given_ns, 128),
               "\" is not the namespace of the request (\"", Utf8Prefix(ns, 128), "\")"));
  }

  Instance in;
  in.ns = std::string(ns);
  in.service = *std::move(name);
  in.id = id.value_or("").empty() ? in.service : *std::move(id);
  in.ttl_seconds = 0;
  if (auto s = ValidateName(StrCat(where, "Name"), in.service, limits); !s.ok()) return s;
  if (auto s = ValidateName(StrCat(where, "ID"), in.id, limits); !s.ok()) return s;

  std::string_view host = default_address;
  if (address && !address->empty()) host = *address;
  if (host.empty()) {
    return absl::InvalidArgumentError(
        StrCat("Missing service address: give ", where, "Address (the agent has none)"));
  }
  absl::StatusOr<std::string> bracketed = BracketedHost(host, StrCat(where, "Address"));
  if (!bracketed.ok()) return bracketed.status();
  if (!port) {
    return absl::InvalidArgumentError(
        StrCat("Missing service port: ", where, "Port is required, as this registry keeps "
                                                "host:port addresses"));
  }
  if (*port < 1 || *port > 65535) {
    return absl::InvalidArgumentError(StrCat(where, "Port must be 1..65535"));
  }
  in.address = StrCat(*bracketed, ":", *port);

  if (meta) in.metadata = *std::move(meta);
  if (auto v = in.metadata.find("version");
      v != in.metadata.end() && ValidateName("version", v->second, limits).ok()) {
    in.version = v->second;
    in.metadata.erase(v);
  }
  if (weights != nullptr) {
    FieldReader w(*weights, StrCat(where, "Weights."));
    std::optional<int64_t> passing = w.Integer("Passing");
    if (!w.ok()) return w.status();
    if (!passing || *passing < limits.min_weight || *passing > limits.max_weight) {
      return absl::InvalidArgumentError(StrCat(where, "Weights.Passing must be ", limits.min_weight,
                                               "..", limits.max_weight));
    }
    in.weight = static_cast<uint32_t>(*passing);
  }
  for (std::string& tag : tags.value_or(std::vector<std::string>{})) {
    // Past the limit ValidateInstance refuses them: stop before the search
    // for duplicates grows with the square of a long list.
    if (in.tags.size() > limits.max_tags) break;
    if (std::find(in.tags.begin(), in.tags.end(), tag) == in.tags.end()) {
      in.tags.push_back(std::move(tag));
    }
  }

  std::vector<CheckSource> sources;
  // An empty Check is no check, as in Consul (which skips a zero CheckType).
  if (check != nullptr && !check->empty()) {
    sources.push_back({check, StrCat(where, "Check"), false});
  }
  if (checks != nullptr) {
    for (size_t i = 0; i < checks->size(); ++i) {
      const std::string at = StrCat(where, "Checks[", i, "]");
      if (!(*checks)[i].is_object()) {
        return absl::InvalidArgumentError(StrCat(kDecodeFailed, at, " must be an object"));
      }
      sources.push_back({&(*checks)[i].get_object(), at, false});
    }
  }
  sources.insert(sources.end(), catalog_checks.begin(), catalog_checks.end());
  if (sources.size() > limits.max_checks_per_instance) {
    return absl::InvalidArgumentError(
        StrCat("more than ", limits.max_checks_per_instance, " checks"));
  }
  for (size_t i = 0; i < sources.size(); ++i) {
    absl::StatusOr<Check> c = ParseCheck(sources[i], in.id, i, sources.size(), limits);
    if (!c.ok()) return c.status();
    in.checks.push_back(*std::move(c));
  }
  if (auto s = ValidateInstance(in, limits); !s.ok()) {
    return absl::InvalidArgumentError(StrCat("Invalid service: ", MessageOf(s)));
  }
  return in;
}

json::object MetaJson(const Instance& in) {
  json::object meta;
  for (const auto& [k, v] : in.metadata) meta[k] = v;
  if (!in.version.empty()) meta["version"] = in.version;
  return meta;
}

json::object WeightsJson(const Instance& in) {
  json::object weights;
  weights["Passing"] = in.weight;
  weights["Warning"] = 1;
  return weights;
}

json::object TaggedAddressesJson(const Agent& agent) {
  json::object tagged;
  tagged["lan"] = agent.address;
  tagged["wan"] = agent.address;
  return tagged;
}

json::object NodeMetaJson() {
  json::object meta;
  meta["consul-network-segment"] = "";
  return meta;
}

// A HealthCheck object with the fields every check shares.
json::object CheckJson(const Agent& agent, std::string_view check_id, std::string_view name,
                       Health status, std::string_view notes, std::string_view output,
                       std::string_view type) {
  json::object o;
  o["Node"] = agent.node;
  o["CheckID"] = check_id;
  o["Name"] = name;
  o["Status"] = ToString(status);
  o["Notes"] = notes;
  o["Output"] = output;
  o["ServiceID"] = "";
  o["ServiceName"] = "";
  o["ServiceTags"] = json::array();
  o["Type"] = type;
  o["Interval"] = "";
  o["Timeout"] = "";
  o["Definition"] = json::object();
  o["CreateIndex"] = 0;
  o["ModifyIndex"] = 0;
  return o;
}

void SetService(json::object& check, const Instance& in) {
  check["ServiceID"] = in.id;
  check["ServiceName"] = in.service;
  check["ServiceTags"] = json::array(in.tags.begin(), in.tags.end());
  check["CreateIndex"] = in.create_revision;
  check["ModifyIndex"] = in.modify_revision;
}

}  // namespace

std::string NodeIdFor(std::string_view node) {
  const uint64_t high = Fnv1a(node);
  const uint64_t low = Fnv1a(node, high ^ 0x9e3779b97f4a7c15ull);
  const std::string hex = Hex(high, 16) + Hex(low, 16);
  return StrCat(std::string_view(hex).substr(0, 8), "-", std::string_view(hex).substr(8, 4), "-",
                std::string_view(hex).substr(12, 4), "-", std::string_view(hex).substr(16, 4), "-",
                std::string_view(hex).substr(20, 12));
}

std::string DefaultCheckId(std::string_view service_id, size_t index, size_t count) {
  if (count == 1) return StrCat("service:", service_id);
  return StrCat("service:", service_id, ":", index + 1);
}

std::string MaintenanceCheckId(std::string_view service_id) {
  return StrCat("_service_maintenance:", service_id);
}

std::optional<Health> ParseCheckStatus(std::string_view text) { return ParseHealth(text); }

absl::StatusOr<Instance> ParseServiceDefinition(std::string_view body, std::string_view ns,
                                                const Agent& agent, const Limits& limits) {
  unsigned char scratch[4096];
  json::monotonic_resource arena(scratch, sizeof(scratch));
  json::value v;
  if (auto s = ParseObject(body, limits, arena, v); !s.ok()) return s;
  return ParseService(v.get_object(), "", ns, agent.address, {}, limits);
}

absl::StatusOr<Instance> ParseCatalogRegistration(std::string_view body, std::string_view ns,
                                                  const Agent& agent, const Limits& limits) {
  unsigned char scratch[4096];
  json::monotonic_resource arena(scratch, sizeof(scratch));
  json::value v;
  if (auto s = ParseObject(body, limits, arena, v); !s.ok()) return s;
  FieldReader r(v.get_object(), "");
  std::optional<std::string> address = r.String("Address");
  const json::object* service = r.Object("Service");
  const json::object* check = r.Object("Check");
  const json::array* checks = r.Array("Checks");
  if (!r.ok()) return r.status();
  if (service == nullptr) {
    return absl::InvalidArgumentError(
        "Missing Service: this registry keeps services, not nodes, so a catalog registration "
        "needs one");
  }
  std::vector<CheckSource> sources;
  if (check != nullptr) sources.push_back({check, "Check", true});
  if (checks != nullptr) {
    for (size_t i = 0; i < checks->size(); ++i) {
      const std::string at = StrCat("Checks[", i, "]");
      if (!(*checks)[i].is_object()) {
        return absl::InvalidArgumentError(StrCat(kDecodeFailed, at, " must be an object"));
      }
      sources.push_back({&(*checks)[i].get_object(), at, true});
    }
  }
  const std::string_view default_address =
      address.value_or("").empty() ? std::string_view(agent.address) : std::string_view(*address);
  return ParseService(*service, "Service.", ns, default_address, sources, limits);
}

absl::StatusOr<CatalogDeregistration> ParseCatalogDeregistration(std::string_view body,
                                                                 const Limits& limits) {
  unsigned char scratch[1024];
  json::monotonic_resource arena(scratch, sizeof(scratch));
  json::value v;
  if (auto s = ParseObject(body, limits, arena, v); !s.ok()) return s;
  FieldReader r(v.get_object(), "");
  CatalogDeregistration out;
  out.node = r.String("Node").value_or("");
  out.service_id = r.String("ServiceID").value_or("");
  out.check_id = r.String("CheckID").value_or("");
  if (!r.ok()) return r.status();
  if (out.node.empty()) return absl::InvalidArgumentError("Must supply node");
  return out;
}

json::object AgentServiceJson(const Instance& in, const Agent& agent) {
  const auto [host, port] = HostPort(in.address);
  json::object o;
  o["ID"] = in.id;
  o["Service"] = in.service;
  o["Tags"] = json::array(in.tags.begin(), in.tags.end());
  o["Meta"] = MetaJson(in);
  o["Port"] = port;
  o["Address"] = host;
  o["Weights"] = WeightsJson(in);
  o["EnableTagOverride"] = false;
  o["Datacenter"] = agent.datacenter;
  if (in.ns != kDefaultNamespace) o["Namespace"] = in.ns;
  // The hash of what the service is, its indexes apart, as Consul's.
  o["ContentHash"] = Hex(Fnv1a(json::serialize(o)), 16);
  o["CreateIndex"] = in.create_revision;
  o["ModifyIndex"] = in.modify_revision;
  return o;
}

json::object CatalogServiceJson(const Instance& in, const Agent& agent) {
  const auto [host, port] = HostPort(in.address);
  json::object o;
  o["ID"] = agent.node_id;
  o["Node"] = agent.node;
  o["Address"] = agent.address;
  o["Datacenter"] = agent.datacenter;
  o["TaggedAddresses"] = TaggedAddressesJson(agent);
  o["NodeMeta"] = NodeMetaJson();
  o["ServiceID"] = in.id;
  o["ServiceName"] = in.service;
  o["ServiceTags"] = json::array(in.tags.begin(), in.tags.end());
  o["ServiceAddress"] = host;
  o["ServicePort"] = port;
  o["ServiceMeta"] = MetaJson(in);
  o["ServiceWeights"] = WeightsJson(in);
  o["ServiceEnableTagOverride"] = false;
  o["CreateIndex"] = in.create_revision;
  o["ModifyIndex"] = in.modify_revision;
  return o;
}

json::object NodeJson(const Agent& agent) {
  json::object o;
  o["ID"] = agent.node_id;
  o["Node"] = agent.node;
  o["Address"] = agent.address;
  o["Datacenter"] = agent.datacenter;
  o["TaggedAddresses"] = TaggedAddressesJson(agent);
  o["Meta"] = NodeMetaJson();
  o["CreateIndex"] = 0;
  o["ModifyIndex"] = 0;
  return o;
}

std::vector<json::object> ServiceChecksJson(const Instance& in, const Agent& agent) {
  std::vector<json::object> out;
  out.reserve(in.checks.size() + 1);
  const std::string name = StrCat("Service '", in.service, "' check");
  for (const Check& c : in.checks) {
    json::object o = CheckJson(agent, c.id, name, c.IsLease() ? Health::kPassing : c.status, "",
                               c.output, ToString(c.type));
    SetService(o, in);
    if (c.type != CheckType::kTtl) {
      o["Interval"] = FormatDuration(c.interval);
      o["Timeout"] = FormatDuration(c.timeout);
    }
    out.push_back(std::move(o));
  }
  if (in.status == InstanceStatus::kDisabled) {
    json::object o = CheckJson(agent, MaintenanceCheckId(in.id), "Service Maintenance Mode",
                               Health::kCritical, "Maintenance mode is enabled for this service",
                               "", "maintenance");
    SetService(o, in);
    out.push_back(std::move(o));
  }
  return out;
}

json::object NodeCheckJson(const Agent& agent) {
  return CheckJson(agent, "serfHealth", "Serf Health Status", Health::kPassing, "",
                   "Agent alive and reachable", "");
}

Health ConsulHealth(const Instance& in) {
  if (in.status == InstanceStatus::kDisabled) return Health::kCritical;
  Health worst = Health::kPassing;
  for (const Check& c : in.checks) {
    if (!c.IsLease()) worst = std::max(worst, c.status);
  }
  return worst;
}

json::object ServiceEntryJson(const Instance& in, const Agent& agent) {
  json::object service = AgentServiceJson(in, agent);
  service.erase("ContentHash");
  json::array checks;
  checks.push_back(NodeCheckJson(agent));
  for (json::object& c : ServiceChecksJson(in, agent)) checks.push_back(std::move(c));
  json::object o;
  o["Node"] = NodeJson(agent);
  o["Service"] = std::move(service);
  o["Checks"] = std::move(checks);
  return o;
}

}  // namespace muster::consul
