#include "support/api_helpers.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include <gtest/gtest.h>

#include "core/json_codec.h"
#include "core/wire/answers.h"
#include "core/wire/paths.h"

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
  return WithQuery(wire::InstancePath(service, id), query);
}

std::string HeartbeatPath(const std::string& service, const std::string& id,
                          const std::string& query) {
  return WithQuery(wire::HeartbeatPath(service, id), query);
}

std::string ListPath(const std::string& service, const std::string& query) {
  return WithQuery(wire::InstancesPath(service), query);
}

wire::HttpResponse Must(absl::StatusOr<wire::HttpResponse> response) {
  if (!response.ok()) {
    ADD_FAILURE() << "request failed: " << response.status();
    return wire::HttpResponse{};
  }
  return *std::move(response);
}

json::value JsonOf(const wire::HttpResponse& response) {
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

std::string ErrorField(const wire::HttpResponse& response, std::string_view field) {
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

std::string ErrorCodeOf(const wire::HttpResponse& response) {
  return ErrorField(response, "code");
}

std::string ErrorMessageOf(const wire::HttpResponse& response) {
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

ListResult ParseList(const wire::HttpResponse& response) {
  ListResult out;
  out.status = response.status;
  if (auto index = response.Header("X-Muster-Index")) out.index_header = ParseU64(*index);
  if (response.status != 200) {
    ADD_FAILURE() << "list answered HTTP " << response.status << ": " << response.body;
    return out;
  }
  auto list = wire::DecodeListAnswer(response.body);
  if (!list.ok()) {
    ADD_FAILURE() << list.status() << ": " << response.body.substr(0, 500);
    return out;
  }
  out.revision = list->revision;
  out.instances = std::move(list->instances);
  return out;
}

std::optional<WatchEvent> ParseEvent(const wire::SseEvent& event) {
  WatchEvent out;
  out.sse_id = event.id;
  out.sse_event = event.event;
  // What a client of the wire makes of it (core/wire/answers.h) ...
  auto change = wire::DecodeWatchEvent(event.event, event.data);
  if (!change.ok() || !change->has_value()) {
    ADD_FAILURE() << "not a change event (" << (change.ok() ? "unknown kind" : change.status().ToString())
                  << "): event " << event.event << ", data " << event.data.substr(0, 500);
    return std::nullopt;
  }
  out.revision = (*change)->revision;
  out.instance = std::move((*change)->instance);
  // ... and the fields around the instance, checked one by one.
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
  out.type = str("type");
  out.ns = str("namespace");
  out.service = str("service");
  out.id = str("id");
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

std::optional<WatchEvent> NextEvent(wire::SseStream& stream, std::chrono::milliseconds timeout) {
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
