#include "support/api_helpers.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include <gtest/gtest.h>

#include "core/json_codec.h"

namespace muster::testing {
namespace json = boost::json;

namespace {

std::string WithQuery(std::string path, const std::string& query) {
  if (!query.empty()) path += "?" + query;
  return path;
}

std::optional<uint64_t> ParseU64(std::string_view text) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

}  // namespace

std::string InstancePath(const std::string& service, const std::string& id,
                         const std::string& query) {
  return WithQuery("/api/v1/services/" + service + "/instances/" + id, query);
}

std::string HeartbeatPath(const std::string& service, const std::string& id,
                          const std::string& query) {
  return WithQuery("/api/v1/services/" + service + "/instances/" + id + "/heartbeat", query);
}

std::string ListPath(const std::string& service, const std::string& query) {
  return WithQuery("/api/v1/services/" + service + "/instances", query);
}

client::HttpResponse Must(absl::StatusOr<client::HttpResponse> response) {
  if (!response.ok()) {
    ADD_FAILURE() << "request failed: " << response.status();
    return client::HttpResponse{};
  }
  return *std::move(response);
}

json::value JsonOf(const client::HttpResponse& response) {
  boost::system::error_code ec;
  json::value v = json::parse(response.body, ec);
  if (ec) {
    ADD_FAILURE() << "HTTP " << response.status << " body is not JSON (" << ec.message()
                  << "): " << response.body.substr(0, 500);
    return nullptr;
  }
  return v;
}

namespace {

std::string ErrorField(const client::HttpResponse& response, std::string_view field) {
  boost::system::error_code ec;
  json::value v = json::parse(response.body, ec);
  if (ec || !v.is_object()) return "";
  const json::value* err = v.as_object().if_contains("error");
  if (err == nullptr || !err->is_object()) return "";
  const json::value* f = err->as_object().if_contains(field);
  if (f == nullptr || !f->is_string()) return "";
  return std::string(f->as_string());
}

}  // namespace

std::string ErrorCodeOf(const client::HttpResponse& response) {
  return ErrorField(response, "code");
}

std::string ErrorMessageOf(const client::HttpResponse& response) {
  return ErrorField(response, "message");
}

uint64_t U64(const json::value& value) {
  if (value.is_uint64()) return value.get_uint64();
  if (value.is_int64() && value.get_int64() >= 0) return static_cast<uint64_t>(value.get_int64());
  ADD_FAILURE() << "not a non-negative integer: " << json::serialize(value);
  return 0;
}

std::vector<std::string> ListResult::ids() const {
  std::vector<std::string> out;
  for (const Instance& in : instances) out.push_back(in.id);
  return out;
}

const Instance* ListResult::Find(std::string_view id) const {
  auto it = std::find_if(instances.begin(), instances.end(),
                         [&](const Instance& in) { return in.id == id; });
  return it == instances.end() ? nullptr : &*it;
}

ListResult ParseList(const client::HttpResponse& response) {
  ListResult out;
  out.status = response.status;
  if (auto index = response.Header("X-Muster-Index")) out.index_header = ParseU64(*index);
  if (response.status != 200) {
    ADD_FAILURE() << "list answered HTTP " << response.status << ": " << response.body;
    return out;
  }
  json::value v = JsonOf(response);
  if (!v.is_object()) {
    ADD_FAILURE() << "list body is not an object: " << response.body.substr(0, 500);
    return out;
  }
  const json::object& o = v.as_object();
  if (const json::value* rev = o.if_contains("revision")) {
    out.revision = U64(*rev);
  } else {
    ADD_FAILURE() << "list body has no revision: " << response.body.substr(0, 500);
  }
  const json::value* instances = o.if_contains("instances");
  if (instances == nullptr || !instances->is_array()) {
    ADD_FAILURE() << "list body has no instances array: " << response.body.substr(0, 500);
    return out;
  }
  for (const json::value& item : instances->as_array()) {
    auto in = InstanceFromJson(item);
    if (!in.ok()) {
      ADD_FAILURE() << "bad instance in list (" << in.status() << "): " << json::serialize(item);
      continue;
    }
    out.instances.push_back(*std::move(in));
  }
  return out;
}

std::optional<WatchEvent> ParseEvent(const client::SseEvent& event) {
  WatchEvent out;
  out.sse_id = event.id;
  out.sse_event = event.event;
  boost::system::error_code ec;
  json::value v = json::parse(event.data, ec);
  if (ec || !v.is_object()) {
    ADD_FAILURE() << "event data is not a JSON object: " << event.data.substr(0, 500);
    return std::nullopt;
  }
  const json::object& o = v.as_object();
  auto str = [&](std::string_view key) -> std::string {
    const json::value* f = o.if_contains(key);
    if (f == nullptr || !f->is_string()) {
      ADD_FAILURE() << "event has no string \"" << key << "\": " << event.data.substr(0, 500);
      return "";
    }
    return std::string(f->as_string());
  };
  const json::value* rev = o.if_contains("revision");
  if (rev == nullptr) {
    ADD_FAILURE() << "event has no revision: " << event.data.substr(0, 500);
    return std::nullopt;
  }
  out.revision = U64(*rev);
  out.type = str("type");
  out.ns = str("namespace");
  out.service = str("service");
  out.id = str("id");
  const json::value* instance = o.if_contains("instance");
  if (instance == nullptr) {
    ADD_FAILURE() << "event has no instance: " << event.data.substr(0, 500);
    return std::nullopt;
  }
  auto in = InstanceFromJson(*instance);
  if (!in.ok()) {
    ADD_FAILURE() << "bad instance in event (" << in.status() << "): " << event.data;
    return std::nullopt;
  }
  out.instance = *std::move(in);
  if (const json::value* check = o.if_contains("check")) {
    // Decoded the way the registry's own instances are (lenient).
    json::object holder{{"checks", json::array{*check}}};
    auto decoded = InstanceFromJson(holder);
    if (!decoded.ok() || decoded->checks.size() != 1) {
      ADD_FAILURE() << "bad check in event: " << event.data.substr(0, 500);
      return std::nullopt;
    }
    out.check = decoded->checks[0];
  }
  return out;
}

std::optional<WatchEvent> NextEvent(client::SseStream& stream, std::chrono::milliseconds timeout) {
  auto event = stream.Next(timeout);
  if (!event.ok()) {
    ADD_FAILURE() << "no watch event: " << event.status();
    return std::nullopt;
  }
  return ParseEvent(*event);
}

std::string RegisterBody(const std::string& address, json::object extra) {
  extra["address"] = address;
  return json::serialize(extra);
}

bool ContainsIgnoringCase(std::string_view text, std::string_view fragment) {
  auto it = std::search(text.begin(), text.end(), fragment.begin(), fragment.end(),
                        [](char a, char b) {
                          return std::tolower(static_cast<unsigned char>(a)) ==
                                 std::tolower(static_cast<unsigned char>(b));
                        });
  return it != text.end();
}

}  // namespace muster::testing
