// musterctl's global options (--addr, --namespace, --json, --timeout), which
// every subcommand takes, and the small helpers that turn them and the
// subcommands' arguments into what a request needs.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>

#include "core/duration.h"
#include "muster/instance.h"

namespace muster::cli {

constexpr std::string_view kDefaultAddress = "127.0.0.1:8470";
constexpr std::string_view kDefaultTimeout = "10s";

// Options every subcommand shares.
struct GlobalOptions {
  std::string address{kDefaultAddress};
  std::string ns;  // empty: leave ?namespace= out, the server uses "default"
  bool json = false;
  std::string timeout_text{kDefaultTimeout};

  // --timeout as a duration; the validator has already accepted the text.
  std::chrono::milliseconds timeout() const { return *ParseDuration(timeout_text); }
};

// The key of the instance a subcommand names, in --namespace (empty: the
// server's default).
inline InstanceKey KeyOf(const GlobalOptions& options, std::string_view service,
                         std::string_view id) {
  return InstanceKey{options.ns, std::string(service), std::string(id)};
}

// Splits "k=v" at the first '='. The CLI validator has already checked the form.
inline std::pair<std::string, std::string> SplitKeyValue(const std::string& text) {
  size_t eq = text.find('=');
  return {text.substr(0, eq), text.substr(eq + 1)};
}

}  // namespace muster::cli
