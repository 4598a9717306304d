// musterctl's commands that read: an instance's checks, a service's
// instances, the services, and the watch stream. Each prints a table (or the
// stream's events) from musterd's answer, or the answer itself with --json.

#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "core/strings.h"
#include "core/wire/answers.h"
#include "core/wire/http_client.h"
#include "core/wire/paths.h"
#include "core/validation.h"
#include "muster/instance.h"

namespace muster::cli {
namespace {

// How often a watch wakes up to check for Ctrl-C.
constexpr std::chrono::seconds kWatchPoll{1};

// Set by SIGINT/SIGTERM; the watch loop polls it and then returns cleanly.
std::atomic<bool> interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free, "used from a signal handler");

extern "C" void OnInterrupt(int) { interrupted.store(true); }

void InstallInterruptHandler() {
  struct sigaction action {};
  action.sa_handler = OnInterrupt;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

// "REV TYPE SERVICE/ID ADDRESS" for one change event; a health event names
// the check and its new state.
std::string FormatEvent(const wire::WatchEvent& event) {
  const Instance& in = event.instance;
  std::string line = muster::StrCat(event.revision, " ", ToString(event.type), " ", in.service,
                                    "/", in.id, " ", in.address);
  if (const Check* c = event.check.empty() ? nullptr : in.FindCheck(event.check)) {
    muster::StrAppend(&line, " check ", c->id, " ", ToString(c->status));
  }
  return line;
}

}  // namespace

absl::Status RunChecks(const GlobalOptions& options, const InstanceArgs& args) {
  return CallAndPrint(
      options, {"GET", wire::ChecksTarget(KeyOf(options, args.service, args.id)), {}},
      [&](const HttpResponse&, const json::object& answer) -> absl::Status {
        auto checks = GetArray(answer, "checks");
        if (!checks.ok()) return checks.status();
        std::vector<std::vector<std::string>> rows;
        for (const json::value& v : **checks) {
          if (!v.is_object()) return UnexpectedAnswer("a check is not a JSON object");
          const json::object& c = v.get_object();
          std::string last = "-";
          std::string output = GetString(c, "output");
          if (const json::value* live = c.if_contains("live");
              live != nullptr && live->is_object()) {
            last = GetString(live->get_object(), "last_checked");
            output = GetString(live->get_object(), "last_output");
          }
          // One line per check: the output's first line.
          output = output.substr(0, output.find('\n'));
          std::string target = GetString(c, "target");
          rows.push_back({GetString(c, "id"), GetString(c, "type"), target.empty() ? "-" : target,
                          GetString(c, "status"), last, output.empty() ? "-" : output});
        }
        std::cout << Describe(args) << ": " << GetString(answer, "health") << '\n';
        PrintTable({"CHECK", "TYPE", "TARGET", "STATUS", "LAST CHECKED", "OUTPUT"}, rows);
        return absl::OkStatus();
      });
}

absl::Status RunList(const GlobalOptions& options, const ListArgs& args) {
  wire::ListParams params;
  params.ns = options.ns;
  params.version = args.version;
  if (args.healthy) params.healthy = true;
  for (const auto& kv : args.metadata) params.metadata.push_back(SplitKeyValue(kv));
  params.tags = args.tags;
  return CallAndPrint(
      options, {"GET", wire::ListTarget(args.service, params), {}},
      [](const HttpResponse& response, const json::object&) -> absl::Status {
        auto list = wire::DecodeListAnswer(response.body);
        if (!list.ok()) return UnexpectedAnswer(MessageOf(list.status()));
        std::vector<std::vector<std::string>> rows;
        for (const Instance& in : list->instances) {
          rows.push_back({in.id, in.address, in.version.empty() ? "-" : in.version,
                          std::to_string(in.weight), std::string(ToString(in.status)),
                          std::string(ToString(in.health)), FormatTtl(in.ttl_seconds),
                          FormatTags(in.tags), FormatMetadata(in.metadata)});
        }
        PrintTable({"ID", "ADDRESS", "VERSION", "WEIGHT", "STATUS", "HEALTH", "TTL", "TAGS",
                    "METADATA"},
                   rows);
        std::cout << "revision " << list->revision << '\n';
        return absl::OkStatus();
      });
}

absl::Status RunServices(const GlobalOptions& options) {
  return CallAndPrint(
      options, {"GET", wire::ServicesTarget(options.ns), {}},
      [](const HttpResponse& response, const json::object&) -> absl::Status {
        auto answer = wire::DecodeServicesAnswer(response.body);
        if (!answer.ok()) return UnexpectedAnswer(MessageOf(answer.status()));
        std::vector<std::vector<std::string>> rows;
        for (const wire::ServiceCount& s : answer->services) {
          rows.push_back({s.name, std::to_string(s.instances), std::to_string(s.healthy)});
        }
        PrintTable({"NAME", "INSTANCES", "HEALTHY"}, rows);
        std::cout << "revision " << answer->revision << '\n';
        return absl::OkStatus();
      });
}

absl::Status RunXdsBootstrap(const GlobalOptions& options, const XdsBootstrapArgs& args) {
  std::string server = args.server;
  if (server.empty()) {
    auto response = Call(options, {"GET", "/healthz", {}});
    if (!response.ok()) return response.status();
    auto health = ParseObject(response->body);
    if (!health.ok()) return health.status();
    const json::value* xds = health->if_contains("xds");
    if (xds == nullptr || !xds->is_object()) {
      return absl::FailedPreconditionError(muster::StrCat(
          "musterd at ", options.address, " serves no xDS (it runs with --xds-listen \"\")"));
    }
    server = GetString(xds->get_object(), "address");
    // A wildcard address is reached at the host musterd was reached at.
    auto bound = SplitHostPort(server, AddressUse::kListen);
    auto reached = SplitHostPort(options.address, AddressUse::kDial);
    if (!bound.ok() || !reached.ok()) return UnexpectedAnswer("xds.address is not host:port");
    if (bound->first == "0.0.0.0" || bound->first == "::") {
      const bool v6 = reached->first.find(':') != std::string::npos;
      server = v6 ? muster::StrCat("[", reached->first, "]:", bound->second)
                  : muster::StrCat(reached->first, ":", bound->second);
    }
  }
  json::object node{{"id", args.node_id}};
  if (!args.cluster.empty()) node["cluster"] = args.cluster;
  if (!args.zone.empty()) node["locality"] = json::object{{"zone", args.zone}};
  json::object bootstrap{
      {"xds_servers", json::array{json::object{
                          {"server_uri", server},
                          {"channel_creds", json::array{json::object{{"type", "insecure"}}}},
                          {"server_features", json::array{"xds_v3"}}}}},
      {"node", std::move(node)}};
  std::cout << json::serialize(bootstrap) << '\n';
  return absl::OkStatus();
}

absl::Status RunWatch(const GlobalOptions& options, const WatchArgs& args) {
  std::optional<uint64_t> from;
  if (args.from_flag->count() > 0) from = args.from;
  auto stream = wire::SseStream::Open(options.address,
                                      wire::WatchTarget(options.ns, args.services, from), {},
                                      options.timeout());
  if (!stream.ok()) return stream.status();
  InstallInterruptHandler();
  while (!interrupted.load()) {
    auto event = (*stream)->Next(kWatchPoll);
    if (absl::IsDeadlineExceeded(event.status())) continue;  // idle: check for Ctrl-C
    if (!event.ok()) return event.status();
    // OutOfRange when the watch fell behind the history (compacted).
    auto decoded = wire::DecodeWatchEvent(event->event, event->data);
    if (!decoded.ok()) return decoded.status();
    if (!decoded->has_value()) continue;  // not a change event
    if (options.json) {
      std::cout << event->data << std::endl;
      continue;
    }
    std::cout << FormatEvent(**decoded) << std::endl;
  }
  return absl::OkStatus();
}

}  // namespace muster::cli
