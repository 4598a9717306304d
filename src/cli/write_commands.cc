// musterctl's commands that write: register, deregister and heartbeat an
// instance. Each builds its request, sends it through CallAndPrint and says
// in one line what the registry did.

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <cstdint>
#include <iostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "core/duration.h"
#include "core/json_codec.h"
#include "core/strings.h"
#include "core/wire/paths.h"
#include "muster/instance.h"

namespace muster::cli {

absl::Status RunRegister(const GlobalOptions& options, const RegisterArgs& args) {
  json::object body;
  body["address"] = args.address;
  if (args.version_flag->count() > 0) body["version"] = args.version;
  if (args.weight_flag->count() > 0) body["weight"] = args.weight;
  if (args.ttl_flag->count() > 0) {
    body["ttl_seconds"] = ParseDuration(args.ttl)->count() / 1000;
  }
  if (!args.metadata.empty()) {
    json::object metadata;
    for (const auto& kv : args.metadata) {
      auto [key, value] = SplitKeyValue(kv);
      metadata[key] = value;
    }
    body["metadata"] = std::move(metadata);
  }
  if (!args.tags.empty()) body["tags"] = json::array(args.tags.begin(), args.tags.end());
  if (args.disabled) body["status"] = ToString(InstanceStatus::kDisabled);
  json::array checks;
  for (const std::string& text : args.checks) {
    boost::system::error_code ec;
    json::value check = json::parse(text, ec);
    if (ec || !check.is_object()) {
      return absl::InvalidArgumentError(
          muster::StrCat("--check needs a JSON object such as '{\"type\":\"http\",\"target\":"
                         "\"/health\"}', got: ", text));
    }
    checks.push_back(std::move(check));
  }
  auto short_form = [&](std::string_view type, const std::vector<std::string>& targets) {
    for (const std::string& target : targets) {
      checks.push_back(json::object{{"type", type}, {"target", target}});
    }
  };
  short_form("http", args.http_checks);
  short_form("tcp", args.tcp_checks);
  short_form("grpc", args.grpc_checks);
  if (!args.ttl_check.empty()) {
    checks.push_back(json::object{{"id", "ttl"}, {"type", "ttl"}, {"ttl", args.ttl_check}});
  }
  if (!checks.empty()) body["checks"] = std::move(checks);
  std::vector<std::pair<std::string, std::string>> headers;
  if (!args.token.empty()) headers.emplace_back("X-Muster-Token", args.token);

  return CallAndPrint(
      options,
      {"PUT", wire::InstanceTarget(KeyOf(options, args.instance.service, args.instance.id)),
       json::serialize(body), std::move(headers)},
      [&](const HttpResponse& response, const json::object& answer) {
        auto stored = InstanceFromJson(answer);
        if (!stored.ok()) return UnexpectedAnswer(MessageOf(stored.status()));
        std::cout << (response.status == 201 ? "registered " : "updated ")
                  << Describe(args.instance) << " at revision " << stored->modify_revision << '\n';
        return absl::OkStatus();
      });
}

absl::Status RunDeregister(const GlobalOptions& options, const InstanceArgs& args) {
  return CallAndPrint(
      options, {"DELETE", wire::InstanceTarget(KeyOf(options, args.service, args.id)), {}},
      [&](const HttpResponse&, const json::object& answer) {
        std::cout << "deregistered " << Describe(args) << " at revision "
                  << GetUnsigned(answer, "revision") << '\n';
        return absl::OkStatus();
      });
}

absl::Status RunHeartbeat(const GlobalOptions& options, const InstanceArgs& args) {
  return CallAndPrint(
      options, {"PUT", wire::HeartbeatTarget(KeyOf(options, args.service, args.id)), {}},
      [&](const HttpResponse&, const json::object& answer) {
        uint64_t ttl = GetUnsigned(answer, "ttl_seconds");
        std::cout << "renewed " << Describe(args) << ": "
                  << (ttl == 0 ? std::string("no lease") : "lease " + FormatTtl(ttl)) << '\n';
        return absl::OkStatus();
      });
}

absl::Status RunReport(const GlobalOptions& options, const ReportArgs& args) {
  json::object body{{"status", args.status}};
  if (!args.output.empty()) body["output"] = args.output;
  return CallAndPrint(
      options,
      {"PUT", wire::CheckReportTarget(KeyOf(options, args.instance.service, args.instance.id), args.check_id),
       json::serialize(body)},
      [&](const HttpResponse&, const json::object& answer) {
        std::cout << "reported " << args.status << " for check " << args.check_id << " of "
                  << Describe(args.instance) << "; instance "
                  << (answer.contains("health") && answer.at("health").is_string()
                          ? std::string(answer.at("health").get_string())
                          : std::string("?"))
                  << '\n';
        return absl::OkStatus();
      });
}

}  // namespace muster::cli
