// The Consul codec's parsers (consul_codec.h; the answers are in
// consul_answers.cc). The rules below are the ones docs/consul.md lists.
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
#include "server/consul/consul_fields.h"

namespace muster::consul {
namespace json = boost::json;
using std::chrono::milliseconds;

namespace {

// Consul's default timeout of an active check.
constexpr milliseconds kDefaultCheckTimeout = std::chrono::seconds(10);

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

}  // namespace

std::string DefaultCheckId(std::string_view service_id, size_t index, size_t count) {
  if (count == 1) return StrCat("service:", service_id);
  return StrCat("service:", service_id, ":", index + 1);
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

}  // namespace muster::consul
