// Request-target parsing: path segments and query parameters, percent-decoded.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace muster {

struct Target {
  std::vector<std::string> segments;  // "/a/b%2Fc" -> {"a", "b/c"}
  std::vector<std::pair<std::string, std::string>> query;

  // The first value of a parameter, if present.
  std::optional<std::string> Param(std::string_view name) const;
  std::vector<std::string> All(std::string_view name) const;
};

// Nullopt when a percent escape is malformed.
std::optional<Target> ParseTarget(std::string_view target);

}  // namespace muster
