// The request targets of musterd's native API (/api/v1, docs/api.md), built
// in one place for musterd's own tests, the SDK, musterctl and the benches.
//
// Every path segment and every query key and value is percent-encoded: all
// bytes but RFC 3986's unreserved characters (A-Z a-z 0-9 - . _ ~) become
// %XX, so an id with '/', '?', '%', a space or UTF-8 arrives at musterd as
// the one segment it is (musterd decodes each segment after splitting the
// path at '/', server/url.h).
//
// Example:
//   wire::ListParams p;
//   p.ns = "prod"; p.version = "v2"; p.index = 42; p.wait = std::chrono::seconds(30);
//   wire::ListTarget("orders", p)
//     == "/api/v1/services/orders/instances?namespace=prod&version=v2&index=42&wait=30s"
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "muster/instance.h"

namespace muster::wire {

inline constexpr std::string_view kApiPrefix = "/api/v1";
inline constexpr std::string_view kHealthzPath = "/healthz";

// Percent-encodes `text` for use as one path segment or one query key or value.
std::string Escape(std::string_view text);

// A path and its query parameters, in the order added.
class Target {
 public:
  explicit Target(std::string path) : path_(std::move(path)) {}

  // ?namespace=ns; left out when `ns` is empty (musterd then uses "default").
  Target& Namespace(std::string_view ns);
  Target& Param(std::string_view key, std::string_view value);

  // The path and its query, every key and value escaped.
  std::string str() const;

 private:
  std::string path_;
  std::vector<std::pair<std::string, std::string>> query_;
};

// Paths, without a query.
std::string ServicesPath();                                   // /api/v1/services
std::string InstancesPath(std::string_view service);          // .../services/{service}/instances
std::string InstancePath(std::string_view service, std::string_view id);  // .../instances/{id}
std::string HeartbeatPath(std::string_view service, std::string_view id);  // .../{id}/heartbeat
std::string ChecksPath(std::string_view service, std::string_view id);     // .../{id}/checks
std::string WatchPath();                                      // /api/v1/watch

// The query of a list (GET .../instances). Unset fields are left out.
struct ListParams {
  std::string ns;                  // empty: musterd's default namespace
  std::string version;             // empty: every version
  std::optional<bool> healthy;     // healthy=true|false
  std::vector<std::pair<std::string, std::string>> metadata;  // meta.KEY=VALUE filters
  std::vector<std::string> tags{};  // tag=T, each (all must be carried)
  std::optional<uint64_t> index;   // blocking query: wait for a change after this revision
  std::optional<std::chrono::milliseconds> wait;  // with index: how long at most
};

// Targets: paths with their ?namespace= and other parameters. An empty `ns`
// leaves ?namespace= out.
std::string InstanceTarget(const InstanceKey& key);   // PUT (register), DELETE
std::string HeartbeatTarget(const InstanceKey& key);  // PUT
std::string ChecksTarget(const InstanceKey& key);     // GET
// PUT .../checks/{check_id}: a report on a reported check.
std::string CheckReportTarget(const InstanceKey& key, std::string_view check_id);
std::string ListTarget(std::string_view service, const ListParams& params = {});
std::string ServicesTarget(std::string_view ns = {});
// GET /api/v1/watch?service=S...&namespace=NS&from=REV; no service: every
// service of the namespace; no `from`: from now on.
std::string WatchTarget(std::string_view ns, const std::vector<std::string>& services,
                        std::optional<uint64_t> from = std::nullopt);

}  // namespace muster::wire
