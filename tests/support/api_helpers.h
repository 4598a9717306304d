// Helpers for tests that speak musterd's HTTP API (docs/api.md): request
// targets, decoding of list answers, watch events and error bodies. Failures to
// decode are reported as gtest failures (ADD_FAILURE) and yield empty values, so
// a test keeps going and the assertion that follows says what was wrong.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "absl/status/statusor.h"
#include "core/wire/http_client.h"
#include "core/wire/paths.h"
#include "muster/instance.h"

namespace muster::testing {

// Paths of core/wire/paths.h, SERVICE and ID escaped, then "?QUERY" as given
// (raw: some tests send malformed queries on purpose; wire::Target builds an
// escaped one).
// "/api/v1/services/SERVICE/instances/ID[?QUERY]"
std::string InstancePath(const std::string& service, const std::string& id,
                         const std::string& query = "");
// "/api/v1/services/SERVICE/instances/ID/heartbeat[?QUERY]"
std::string HeartbeatPath(const std::string& service, const std::string& id,
                          const std::string& query = "");
// "/api/v1/services/SERVICE/instances[?QUERY]"
std::string ListPath(const std::string& service, const std::string& query = "");

// The response of a request that must reach the server. A transport error is
// a test failure; the returned response then has status 0.
wire::HttpResponse Must(absl::StatusOr<wire::HttpResponse> response);

// The body as JSON; null (and a test failure) when it does not parse.
boost::json::value JsonOf(const wire::HttpResponse& response);

// error.code and error.message of an error body; "" when absent.
std::string ErrorCodeOf(const wire::HttpResponse& response);
std::string ErrorMessageOf(const wire::HttpResponse& response);

// A JSON number as uint64; 0 (and a test failure) when it is not a
// non-negative integer.
uint64_t U64(const boost::json::value& value);

// A list answer: {"revision": N, "instances": [...]} plus X-Muster-Index.
struct ListResult {
  int status = 0;
  uint64_t revision = 0;
  std::optional<uint64_t> index_header;  // X-Muster-Index, when present and numeric
  std::vector<Instance> instances;

  std::vector<std::string> ids() const;
  // The instance with this id, or nullptr.
  const Instance* Find(std::string_view id) const;
};
ListResult ParseList(const wire::HttpResponse& response);

// One change event of the watch stream.
struct WatchEvent {
  std::string sse_id;     // the "id:" line
  std::string sse_event;  // the "event:" line
  uint64_t revision = 0;
  std::string type;
  std::string ns;
  std::string service;
  std::string id;
  Instance instance;
  // "health" events: the check that changed, as in the instance's "checks".
  std::optional<Check> check;
};
// Decodes the data of an event; a test failure and nullopt when malformed.
std::optional<WatchEvent> ParseEvent(const wire::SseEvent& event);

// The next change event within `timeout`; a test failure and nullopt when
// none arrives or it is malformed.
std::optional<WatchEvent> NextEvent(wire::SseStream& stream, std::chrono::milliseconds timeout);

// A register body: {"address": ADDRESS} plus the fields of `extra`.
std::string RegisterBody(const std::string& address, boost::json::object extra = {});

// True when `text` contains `fragment`, ignoring ASCII case.
bool ContainsIgnoringCase(std::string_view text, std::string_view fragment);

}  // namespace muster::testing
