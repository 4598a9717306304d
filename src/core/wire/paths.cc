#include "core/wire/paths.h"

#include "core/duration.h"
#include "core/strings.h"

namespace muster::wire {

std::string Escape(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

Target& Target::Namespace(std::string_view ns) {
  if (!ns.empty()) Param("namespace", ns);
  return *this;
}

Target& Target::Param(std::string_view key, std::string_view value) {
  query_.emplace_back(key, value);
  return *this;
}

std::string Target::str() const {
  std::string out = path_;
  char separator = '?';
  for (const auto& [key, value] : query_) {
    StrAppend(&out, separator, Escape(key), "=", Escape(value));
    separator = '&';
  }
  return out;
}

std::string ServicesPath() { return StrCat(kApiPrefix, "/services"); }

std::string InstancesPath(std::string_view service) {
  return StrCat(kApiPrefix, "/services/", Escape(service), "/instances");
}

std::string InstancePath(std::string_view service, std::string_view id) {
  return StrCat(InstancesPath(service), "/", Escape(id));
}

std::string HeartbeatPath(std::string_view service, std::string_view id) {
  return StrCat(InstancePath(service, id), "/heartbeat");
}

std::string ChecksPath(std::string_view service, std::string_view id) {
  return StrCat(InstancePath(service, id), "/checks");
}

std::string WatchPath() { return StrCat(kApiPrefix, "/watch"); }

std::string InstanceTarget(const InstanceKey& key) {
  return Target(InstancePath(key.service, key.id)).Namespace(key.ns).str();
}

std::string HeartbeatTarget(const InstanceKey& key) {
  return Target(HeartbeatPath(key.service, key.id)).Namespace(key.ns).str();
}

std::string ChecksTarget(const InstanceKey& key) {
  return Target(ChecksPath(key.service, key.id)).Namespace(key.ns).str();
}

std::string CheckReportTarget(const InstanceKey& key, std::string_view check_id) {
  return Target(StrCat(ChecksPath(key.service, key.id), "/", Escape(check_id))).Namespace(key.ns).str();
}

std::string ListTarget(std::string_view service, const ListParams& params) {
  Target target(InstancesPath(service));
  target.Namespace(params.ns);
  if (!params.version.empty()) target.Param("version", params.version);
  if (params.healthy) target.Param("healthy", *params.healthy ? "true" : "false");
  for (const auto& [key, value] : params.metadata) target.Param(StrCat("meta.", key), value);
  for (const std::string& tag : params.tags) target.Param("tag", tag);
  if (params.index) target.Param("index", StrCat(*params.index));
  if (params.wait) target.Param("wait", FormatDuration(*params.wait));
  return target.str();
}

std::string ServicesTarget(std::string_view ns) {
  return Target(ServicesPath()).Namespace(ns).str();
}

std::string WatchTarget(std::string_view ns, const std::vector<std::string>& services,
                        std::optional<uint64_t> from) {
  Target target(WatchPath());
  for (const std::string& service : services) target.Param("service", service);
  target.Namespace(ns);
  if (from) target.Param("from", StrCat(*from));
  return target.str();
}

}  // namespace muster::wire
