#include "core/wire/answers.h"

#include "core/json_codec.h"
#include "core/strings.h"
#include "core/wire/errors.h"

namespace muster::wire {
namespace {

namespace json = boost::json;

absl::Status Malformed(std::string_view what, std::string_view why) {
  return absl::InternalError(StrCat("musterd sent a malformed ", what, ": ", why));
}

absl::StatusOr<json::object> ParseObject(std::string_view text, std::string_view what) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return Malformed(what, ec.message());
  if (!v.is_object()) return Malformed(what, "not a JSON object");
  return std::move(v.as_object());
}

std::optional<uint64_t> UnsignedOf(const json::value* v) {
  if (v == nullptr) return std::nullopt;
  if (v->is_uint64()) return v->get_uint64();
  if (v->is_int64() && v->get_int64() >= 0) return static_cast<uint64_t>(v->get_int64());
  return std::nullopt;
}

absl::StatusOr<uint64_t> RevisionOf(const json::object& o, std::string_view what) {
  std::optional<uint64_t> revision = UnsignedOf(o.if_contains("revision"));
  if (!revision) return Malformed(what, "no valid \"revision\"");
  return *revision;
}

absl::StatusOr<const json::array*> ArrayOf(const json::object& o, std::string_view key,
                                           std::string_view what) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_array()) return Malformed(what, StrCat("no \"", key, "\" array"));
  return &v->get_array();
}

}  // namespace

absl::StatusOr<ListAnswer> DecodeListAnswer(std::string_view body) {
  constexpr std::string_view kWhat = "list answer";
  auto o = ParseObject(body, kWhat);
  if (!o.ok()) return o.status();
  ListAnswer out;
  auto revision = RevisionOf(*o, kWhat);
  if (!revision.ok()) return revision.status();
  out.revision = *revision;
  auto instances = ArrayOf(*o, "instances", kWhat);
  if (!instances.ok()) return instances.status();
  out.instances.reserve((*instances)->size());
  for (const json::value& v : **instances) {
    auto instance = InstanceFromJson(v);
    if (!instance.ok()) return Malformed(kWhat, MessageOf(instance.status()));
    out.instances.push_back(*std::move(instance));
  }
  return out;
}

absl::StatusOr<ServicesAnswer> DecodeServicesAnswer(std::string_view body) {
  constexpr std::string_view kWhat = "services answer";
  auto o = ParseObject(body, kWhat);
  if (!o.ok()) return o.status();
  ServicesAnswer out;
  auto revision = RevisionOf(*o, kWhat);
  if (!revision.ok()) return revision.status();
  out.revision = *revision;
  auto services = ArrayOf(*o, "services", kWhat);
  if (!services.ok()) return services.status();
  for (const json::value& v : **services) {
    const json::object* s = v.if_object();
    const json::value* name = s != nullptr ? s->if_contains("name") : nullptr;
    if (name == nullptr || !name->is_string()) return Malformed(kWhat, "a service has no \"name\"");
    std::optional<uint64_t> instances = UnsignedOf(s->if_contains("instances"));
    std::optional<uint64_t> healthy = UnsignedOf(s->if_contains("healthy"));
    if (!instances || !healthy) {
      return Malformed(kWhat, StrCat("service ", std::string_view(name->get_string()),
                                     " has no valid \"instances\" and \"healthy\" counts"));
    }
    out.services.push_back(ServiceCount{std::string(name->get_string()), *instances, *healthy});
  }
  return out;
}

json::object EventToJson(uint64_t revision, ChangeType type, const Instance& instance,
                         const Check* check) {
  json::object o;
  o["revision"] = revision;
  o["type"] = ToString(type);
  o["namespace"] = instance.ns;
  o["service"] = instance.service;
  o["id"] = instance.id;
  o["instance"] = InstanceToJson(instance);
  if (check != nullptr) o["check"] = CheckToJson(*check);
  return o;
}

absl::StatusOr<std::optional<WatchEvent>> DecodeWatchEvent(std::string_view name,
                                                           std::string_view data) {
  if (name == kCompactedEvent) {
    absl::Status gone = DecodeError(kGone.http_status, data);
    return absl::OutOfRangeError(
        StrCat("the watch fell behind musterd's history: ", MessageOf(gone)));
  }
  std::optional<ChangeType> type = ParseChangeType(name);
  if (!type) return std::optional<WatchEvent>();
  constexpr std::string_view kWhat = "watch event";
  auto o = ParseObject(data, kWhat);
  if (!o.ok()) return o.status();
  WatchEvent out;
  out.type = *type;
  auto revision = RevisionOf(*o, kWhat);
  if (!revision.ok()) return revision.status();
  out.revision = *revision;
  const json::value* instance = o->if_contains("instance");
  if (instance == nullptr) return Malformed(kWhat, "no \"instance\"");
  auto decoded = InstanceFromJson(*instance);
  if (!decoded.ok()) return Malformed(kWhat, MessageOf(decoded.status()));
  out.instance = *std::move(decoded);
  if (const json::value* check = o->if_contains("check"); check != nullptr && check->is_object()) {
    if (const json::value* id = check->as_object().if_contains("id"); id && id->is_string()) {
      out.check = std::string(id->get_string());
    }
  }
  return std::optional<WatchEvent>(std::move(out));
}

}  // namespace muster::wire
