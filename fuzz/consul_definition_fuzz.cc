// The Consul codec's parsers (server/consul/consul_codec.h) on arbitrary
// bytes: each input is read as a service definition (PUT
// /v1/agent/service/register), a catalog registration and a catalog
// deregistration.
//
// Properties, beyond not crashing under ASan and UBSan:
// - a refused body is InvalidArgument with a UTF-8 message when the body was
//   UTF-8 (and an error body that is JSON carrying it);
// - an accepted definition or catalog registration is a valid instance
//   (ValidateInstance) in the request's namespace, enabled, without a lease
//   and without a lease check;
// - the registry can hold it: what the store writes for it reads back the
//   same, field for field, and the native API's strict parser accepts its
//   listed JSON as the same instance;
// - every answer made of it (AgentServiceJson, CatalogServiceJson,
//   ServiceChecksJson, ServiceEntryJson) serializes to UTF-8 JSON; its
//   checks are answered one for one, plus the maintenance check once it is
//   disabled; ConsulHealth is its worst check, critical once disabled;
// - its AgentService JSON, sent back as a definition and as a catalog
//   registration's Service, registers the same instance (checks apart,
//   which the AgentService shape does not carry);
// - an accepted deregistration reads the same from its own re-encoding.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "core/json_codec.h"
#include "core/validation.h"
#include "fuzz_support.h"
#include "server/consul/consul_codec.h"

namespace muster::fuzz {
namespace {

namespace json = boost::json;

constexpr std::string_view kNs = "default";

consul::Agent FuzzAgent() {
  return consul::Agent{"dc1", "fuzz-node", consul::NodeIdFor("fuzz-node"), "10.0.0.1"};
}

// Limits for bodies the codec writes itself: an answer may be longer than
// the body it came from (Address, Weights and the version put back).
Limits Roomy(const Limits& limits) {
  Limits roomy = limits;
  roomy.max_body_bytes = SIZE_MAX;
  return roomy;
}

std::string Serialized(const json::value& v, std::string_view what) {
  std::string text = json::serialize(v);
  FUZZ_CHECK(IsUtf8(text), StrCat(what, " is not UTF-8: ", Escaped(text)));
  boost::system::error_code ec;
  json::parse(text, ec);
  FUZZ_CHECK(!ec, StrCat(what, " is not JSON: ", Escaped(text)));
  return text;
}

// The properties of an instance the codec accepted from `text`.
void CheckAccepted(const Instance& in, std::string_view text, const Limits& limits) {
  const consul::Agent agent = FuzzAgent();
  FUZZ_CHECK(ValidateInstance(in, limits).ok(),
             StrCat("an accepted definition is not valid: ", Escaped(SerializeInstance(in))));
  FUZZ_CHECK(in.ns == kNs && in.ttl_seconds == 0 && in.status == InstanceStatus::kEnabled,
             StrCat("namespace, lease or status not as registered: ", SerializeInstance(in)));
  for (const Check& c : in.checks) {
    FUZZ_CHECK(!c.IsLease(), StrCat("a lease check from ", Escaped(text)));
  }

  // What the embedded store writes and reads back, and what the native API
  // makes of the instance's listed JSON.
  Instance stored = in;
  stored.AdoptCheckStates(nullptr);
  stored.create_revision = 3;
  stored.modify_revision = 5;
  absl::StatusOr<Instance> loaded = ParseInstance(SerializeInstance(stored));
  FUZZ_CHECK(loaded.ok(), loaded.status().ToString());
  CheckSameInstance(stored, *loaded, "an accepted instance differs after the store's round trip");
  absl::StatusOr<Instance> native =
      ParseRegistration(SerializeInstance(stored), in.ns, in.service, in.id, Roomy(limits));
  FUZZ_CHECK(native.ok(), StrCat("the native API refuses it: ", native.status().ToString(), "\n",
                                 Escaped(SerializeInstance(stored))));
  FUZZ_CHECK(native->SameSpec(in), StrCat("the native API reads another instance:\n",
                                          Escaped(SerializeInstance(in)), "\n",
                                          Escaped(SerializeInstance(*native))));

  // The answers.
  const std::string agent_service =
      Serialized(consul::AgentServiceJson(stored, agent), "AgentServiceJson");
  Serialized(consul::CatalogServiceJson(stored, agent), "CatalogServiceJson");
  Serialized(consul::ServiceEntryJson(stored, agent), "ServiceEntryJson");
  FUZZ_CHECK(consul::ServiceChecksJson(stored, agent).size() == stored.checks.size(),
             "not one HealthCheck per check");
  FUZZ_CHECK(consul::ConsulHealth(stored) == stored.WorstCheck(),
             StrCat("ConsulHealth is not the worst check: ", SerializeInstance(stored)));
  Instance disabled = stored;
  disabled.status = InstanceStatus::kDisabled;
  FUZZ_CHECK(consul::ServiceChecksJson(disabled, agent).size() == stored.checks.size() + 1,
             "no maintenance check while disabled");
  FUZZ_CHECK(consul::ConsulHealth(disabled) == Health::kCritical, "disabled and not critical");

  // The AgentService JSON registers the same instance again.
  absl::StatusOr<Instance> again =
      consul::ParseServiceDefinition(agent_service, kNs, agent, Roomy(limits));
  FUZZ_CHECK(again.ok(), StrCat("its AgentService JSON is refused: ", again.status().ToString(),
                                "\n", Escaped(agent_service)));
  again->checks = in.checks;
  FUZZ_CHECK(again->SameSpec(in), StrCat("its AgentService JSON registers another instance:\n",
                                         Escaped(SerializeInstance(in)), "\n",
                                         Escaped(SerializeInstance(*again))));
  absl::StatusOr<Instance> catalog = consul::ParseCatalogRegistration(
      StrCat(R"({"Node": "fuzz-node", "Service": )", agent_service, "}"), kNs, agent,
      Roomy(limits));
  FUZZ_CHECK(catalog.ok(), StrCat("its AgentService JSON is refused in a catalog registration: ",
                                  catalog.status().ToString()));
  catalog->checks = in.checks;
  FUZZ_CHECK(catalog->SameSpec(in),
             StrCat("its AgentService JSON registers another instance in the catalog:\n",
                    Escaped(SerializeInstance(in)), "\n", Escaped(SerializeInstance(*catalog))));
}

void Definition(std::string_view text, bool utf8) {
  const Limits limits;
  absl::StatusOr<Instance> in = consul::ParseServiceDefinition(text, kNs, FuzzAgent(), limits);
  if (!in.ok()) {
    CheckError(in.status(), absl::StatusCode::kInvalidArgument, utf8, text);
    return;
  }
  CheckAccepted(*in, text, limits);
}

void CatalogRegistration(std::string_view text, bool utf8) {
  const Limits limits;
  absl::StatusOr<Instance> in = consul::ParseCatalogRegistration(text, kNs, FuzzAgent(), limits);
  if (!in.ok()) {
    CheckError(in.status(), absl::StatusCode::kInvalidArgument, utf8, text);
    return;
  }
  CheckAccepted(*in, text, limits);
}

void CatalogDeregistration(std::string_view text, bool utf8) {
  const Limits limits;
  absl::StatusOr<consul::CatalogDeregistration> d =
      consul::ParseCatalogDeregistration(text, limits);
  if (!d.ok()) {
    CheckError(d.status(), absl::StatusCode::kInvalidArgument, utf8, text);
    return;
  }
  json::object o;
  o["Node"] = d->node;
  o["ServiceID"] = d->service_id;
  o["CheckID"] = d->check_id;
  absl::StatusOr<consul::CatalogDeregistration> again =
      consul::ParseCatalogDeregistration(json::serialize(o), Roomy(limits));
  FUZZ_CHECK(again.ok() && again->node == d->node && again->service_id == d->service_id &&
                 again->check_id == d->check_id,
             StrCat("a deregistration reads otherwise from its encoding: ", Escaped(text)));
}

}  // namespace
}  // namespace muster::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const bool utf8 = muster::fuzz::IsUtf8(text);
  muster::fuzz::Definition(text, utf8);
  muster::fuzz::CatalogRegistration(text, utf8);
  muster::fuzz::CatalogDeregistration(text, utf8);
  return 0;
}
