// What every fuzz target in fuzz/ shares: property checks that abort with a
// readable account (libFuzzer then saves the input as a crash), UTF-8
// validation, and a field-by-field comparison of instances.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "absl/status/status.h"
#include "core/json_codec.h"
#include "core/strings.h"
#include "core/wire/errors.h"
#include "muster/instance.h"

namespace muster::fuzz {

[[noreturn]] inline void Fail(std::string_view property, std::string_view detail) {
  std::fprintf(stderr, "\nPROPERTY VIOLATED: %.*s\n%.*s\n", static_cast<int>(property.size()),
               property.data(), static_cast<int>(detail.size()), detail.data());
  std::abort();
}

// Checks a property; `detail` is built only when it fails.
#define FUZZ_CHECK(cond, detail)                      \
  do {                                                \
    if (!(cond)) ::muster::fuzz::Fail(#cond, detail); \
  } while (0)

// Well-formed UTF-8 (RFC 3629): no overlong forms, surrogates or code points
// above U+10FFFF.
inline bool IsUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) return false;
    }
    i += len;
  }
  return true;
}

// `s` with every byte outside printable ASCII as \xNN, for failure reports.
inline std::string Escaped(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// MUSTER_FUZZ_UTF8=off turns off the checks that error messages of UTF-8
// input are UTF-8 and that error bodies are JSON whatever the message holds:
// should a change break them, the rest can still be fuzzed while it is
// fixed (they found the cut characters of docs/fuzzing.md).
inline bool CheckUtf8Messages() {
  static const bool on = [] {
    const char* v = std::getenv("MUSTER_FUZZ_UTF8");
    return v == nullptr || std::string_view(v) != "off";
  }();
  return on;
}

// An error the API would answer: the code `want`, a message that is not
// empty and, when the input it came from was UTF-8, UTF-8 itself; and an
// error body (ErrorBody) that is JSON carrying the message.
inline void CheckError(const absl::Status& status, absl::StatusCode want, bool input_utf8,
                       std::string_view input) {
  const std::string_view message = MessageOf(status);
  FUZZ_CHECK(status.code() == want,
             StrCat("code ", static_cast<int>(status.code()), " for input ", Escaped(input), ": ",
                    Escaped(message)));
  FUZZ_CHECK(!message.empty(), StrCat("empty message for input ", Escaped(input)));
  if (input_utf8 && CheckUtf8Messages()) {
    FUZZ_CHECK(IsUtf8(message), StrCat("message \"", Escaped(message),
                                       "\" is not UTF-8 for the UTF-8 input ", Escaped(input)));
  }
  // The body musterd would answer: JSON (which is UTF-8) that carries the
  // message, whatever bytes the message quotes.
  const std::string body = wire::ErrorBody(wire::ErrorCodeName(status.code()), message);
  if (IsUtf8(message) || CheckUtf8Messages()) {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(body, ec);
    FUZZ_CHECK(!ec, StrCat("error body is not JSON (", ec.message(), "): ", Escaped(body)));
    const boost::json::string* got = nullptr;
    if (v.is_object() && v.get_object().contains("error") && v.at("error").is_object() &&
        v.at("error").get_object().contains("message")) {
      got = v.at("error").at("message").if_string();
    }
    FUZZ_CHECK(got != nullptr, StrCat("error body without error.message: ", Escaped(body)));
    if (IsUtf8(message)) {
      FUZZ_CHECK(std::string_view(*got) == message,
                 StrCat("error body changed the message: ", Escaped(body)));
    }
  }
}

// Every field equal, the registry's own (health, check states, revisions)
// included; a report of both encodings otherwise.
inline void CheckSameInstance(const Instance& a, const Instance& b, std::string_view what) {
  bool same = a.SameSpec(b) && a.health == b.health && a.create_revision == b.create_revision &&
              a.modify_revision == b.modify_revision && a.checks.size() == b.checks.size();
  for (size_t i = 0; same && i < a.checks.size(); ++i) {
    same = a.checks[i].status == b.checks[i].status && a.checks[i].output == b.checks[i].output;
  }
  if (!same) {
    std::string checks;
    for (size_t i = 0; i < a.checks.size() && i < b.checks.size(); ++i) {
      if (!a.checks[i].SameSpec(b.checks[i])) {
        const Check& x = a.checks[i];
        const Check& y = b.checks[i];
        StrAppend(&checks, "\ncheck ", i, " differs in spec: target \"", Escaped(x.target), "\"/\"",
                  Escaped(y.target), "\" method ", x.method, "/", y.method, " headers ",
                  x.headers.size(), "/", y.headers.size(), " grpc_service \"", x.grpc_service,
                  "\"/\"", y.grpc_service, "\" args ", x.args.size(), "/", y.args.size(),
                  " interval ", x.interval.count(), "/", y.interval.count(), " tls_skip_verify ",
                  static_cast<int>(x.tls_skip_verify), "/", static_cast<int>(y.tls_skip_verify));
      }
    }
    Fail(what, StrCat("first:  ", Escaped(SerializeInstance(a)), "\nsecond: ",
                      Escaped(SerializeInstance(b)), checks));
  }
}

}  // namespace muster::fuzz
