// Reading the bodies Consul's clients send, as Consul reads them: field
// names matched in ASCII lower case with '_' dropped ("Name", "name",
// "deregister_critical_service_after"), null as absent, numbers with an
// integral value as integers, durations as Go strings or nanoseconds, and a
// wrong type refused with a message naming the field. Private to the codec
// (consul_codec.cc), which the fuzz target feeds.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json.hpp>

#include "absl/status/status.h"
#include "core/duration.h"
#include "core/limits.h"
#include "core/strings.h"
#include "core/utf8.h"

namespace muster::consul {

inline constexpr std::string_view kDecodeFailed = "Request decode failed: ";
// The longest duration read, in nanoseconds (ParseDuration's bound too).
inline constexpr int64_t kMaxDurationNanos = 1'000'000'000'000'000'000;

// A field name as Consul matches it: ASCII lower case, '_' dropped.
inline std::string FieldKey(std::string_view name) {
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
inline std::optional<int64_t> AsInteger(const boost::json::value& v) {
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
inline bool Meaningful(const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::null:
      return false;
    case boost::json::kind::bool_:
      return v.get_bool();
    case boost::json::kind::int64:
      return v.get_int64() != 0;
    case boost::json::kind::uint64:
      return v.get_uint64() != 0;
    case boost::json::kind::double_:
      return v.get_double() != 0;
    case boost::json::kind::string:
      return !v.get_string().empty();
    case boost::json::kind::array:
      return !v.get_array().empty();
    case boost::json::kind::object:
      return !v.get_object().empty();
  }
  return true;
}

// Whether an object has a field that means something (Meaningful).
inline bool AnyMeaningful(const boost::json::object& object) {
  return std::any_of(object.begin(), object.end(),
                     [](const boost::json::key_value_pair& field) { return Meaningful(field.value()); });
}

// The fields of one JSON object of a body, under Consul's matching. A read
// of a field of the wrong type records the first such error and answers
// nothing, so that a caller reads every field it wants and tests ok() once.
class FieldReader {
 public:
  // `where` prefixes field names in messages ("", "Service.", "Checks[1].").
  FieldReader(const boost::json::object& object, std::string where) : where_(std::move(where)) {
    Merge(object);
  }

  // Adds the fields of `object`, replacing those of the same key.
  void Merge(const boost::json::object& object) {
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
    const boost::json::value* v = Find(name);
    return v != nullptr && Meaningful(*v);
  }

  std::optional<std::string> String(std::string_view name) {
    const boost::json::value* v = Find(name);
    if (v == nullptr) return std::nullopt;
    if (!v->is_string()) return WrongType(name, "a string");
    return std::string(v->get_string());
  }

  std::optional<bool> Bool(std::string_view name) {
    const boost::json::value* v = Find(name);
    if (v == nullptr) return std::nullopt;
    if (!v->is_bool()) return WrongType(name, "true or false");
    return v->get_bool();
  }

  std::optional<int64_t> Integer(std::string_view name) {
    const boost::json::value* v = Find(name);
    if (v == nullptr) return std::nullopt;
    std::optional<int64_t> n = AsInteger(*v);
    if (!n) return WrongType(name, "an integer");
    return n;
  }

  // A Go duration string or an integer of nanoseconds, rounded to
  // std::chrono::milliseconds. Negative durations are refused.
  std::optional<std::chrono::milliseconds> Duration(std::string_view name) {
    const boost::json::value* v = Find(name);
    if (v == nullptr) return std::nullopt;
    if (v->is_string()) {
      absl::StatusOr<std::chrono::milliseconds> d = ParseDuration(v->get_string());
      if (!d.ok()) return Fail(StrCat(where_, name, ": ", MessageOf(d.status())));
      return *d;
    }
    std::optional<int64_t> nanos = AsInteger(*v);
    if (!nanos) {
      return WrongType(name, "a duration such as \"10s\" or an integer of nanoseconds");
    }
    if (*nanos < 0) return Fail(StrCat(where_, name, " must not be negative"));
    if (*nanos > kMaxDurationNanos) return Fail(StrCat(where_, name, " is out of range"));
    return std::chrono::milliseconds((*nanos + 500'000) / 1'000'000);
  }

  std::optional<std::vector<std::string>> Strings(std::string_view name) {
    const boost::json::value* v = Find(name);
    if (v == nullptr) return std::nullopt;
    if (!v->is_array()) return WrongType(name, "an array of strings");
    std::vector<std::string> out;
    out.reserve(v->get_array().size());
    for (const boost::json::value& item : v->get_array()) {
      if (!item.is_string()) return WrongType(name, "an array of strings");
      out.emplace_back(item.get_string());
    }
    return out;
  }

  std::optional<std::map<std::string, std::string>> StringMap(std::string_view name) {
    const boost::json::value* v = Find(name);
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
    const boost::json::value* v = Find(name);
    if (v == nullptr) return std::nullopt;
    constexpr std::string_view kWant = "an object of arrays of strings";
    if (!v->is_object()) return WrongType(name, kWant);
    std::map<std::string, std::string> out;
    for (const auto& [k, values] : v->get_object()) {
      if (!values.is_array()) return WrongType(name, kWant);
      const boost::json::array& list = values.get_array();
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

  const boost::json::object* Object(std::string_view name) {
    return Typed(name, "an object", &boost::json::value::if_object);
  }

  const boost::json::array* Array(std::string_view name) {
    return Typed(name, "an array", &boost::json::value::if_array);
  }

 private:
  // The field as a T (if_object, if_array), or null: absent, or of another
  // type (then refused as `what`).
  template <typename T>
  const T* Typed(std::string_view name, std::string_view what,
                 const T* (boost::json::value::*as)() const noexcept) {
    const boost::json::value* v = Find(name);
    if (v == nullptr) return nullptr;
    const T* typed = (v->*as)();
    if (typed == nullptr) WrongType(name, what);
    return typed;
  }

  const boost::json::value* Find(std::string_view name) const {
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

  std::map<std::string, const boost::json::value*, std::less<>> fields_;
  std::string where_;
  absl::Status status_;
};

// Parses `body` into `out` (allocated from `arena`) as a JSON object.
inline absl::Status ParseObject(std::string_view body, const Limits& limits,
                         boost::json::monotonic_resource& arena, boost::json::value& out) {
  if (body.size() > limits.max_body_bytes) {
    return absl::InvalidArgumentError(
        StrCat("Request body is over ", limits.max_body_bytes, " bytes"));
  }
  boost::system::error_code ec;
  out = boost::json::parse(body, ec, &arena);
  if (ec) return absl::InvalidArgumentError(StrCat(kDecodeFailed, ec.message()));
  if (!out.is_object()) {
    return absl::InvalidArgumentError(StrCat(kDecodeFailed, "the body must be a JSON object"));
  }
  return absl::OkStatus();
}

}  // namespace muster::consul
