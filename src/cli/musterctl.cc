// musterctl: the command-line client of musterd. It registers, deregisters and
// heartbeats instances, lists instances and services, and follows the watch
// stream. docs/cli.md is its manual. This file is its command line: the
// flags and subcommands, their checks and usage, and the exit codes; the
// subcommands run in read_commands.cc and write_commands.cc (commands.h).
//
// Exit codes (ExitCodeFor below is the one place that decides them):
//   0  success (also: watch stopped with Ctrl-C)
//   1  any other error: an unexpected answer, a watch that was compacted or
//      asked for a revision the server no longer has (410), 429, other 5xx
//   2  usage error: unknown flag, missing or malformed argument
//   3  not found (HTTP 404): deregister or heartbeat of an unknown instance
//   4  invalid argument (HTTP 400, 405, 413): the registry refused the input
//   5  unavailable: the registry cannot be reached, the connection broke or
//      a watch stream ended, or HTTP 503
//   6  deadline exceeded: no answer within --timeout, or HTTP 504 (cluster
//      mode: etcd did not answer in time)
// An HTTP error's code is the one musterd named in its error body
// (core/wire/errors.h); the HTTP status decides only when it names none.

#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdint>
#include <exception>
#include <functional>
#include <iostream>
#include <string>

#include "absl/status/status.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "core/duration.h"
#include "core/validation.h"

namespace muster::cli {
namespace {

enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,
  kExitUsage = 2,
  kExitNotFound = 3,
  kExitInvalidArgument = 4,
  kExitUnavailable = 5,
  kExitDeadlineExceeded = 6,
};

int ExitCodeFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kNotFound:
      return kExitNotFound;
    case absl::StatusCode::kInvalidArgument:
      return kExitInvalidArgument;
    case absl::StatusCode::kUnavailable:
      return kExitUnavailable;
    case absl::StatusCode::kDeadlineExceeded:
      return kExitDeadlineExceeded;
    default:
      return kExitError;
  }
}

// ---------------------------------------------------------------------------
// Command line.

// Accepts "k=v" with a non-empty key.
const CLI::Validator kKeyValue(
    [](std::string& text) -> std::string {
      size_t eq = text.find('=');
      if (eq == std::string::npos || eq == 0) return "expected KEY=VALUE, got \"" + text + "\"";
      return {};
    },
    "");

// Accepts a Go-style duration ("500ms", "30s", "5m"; a bare number is seconds).
const CLI::Validator kDuration(
    [](std::string& text) -> std::string {
      auto d = ParseDuration(text);
      return d.ok() ? std::string() : std::string(d.status().message());
    },
    "");

// Accepts a whole number of seconds, bare ("30") or as a duration ("1m").
const CLI::Validator kSeconds(
    [](std::string& text) -> std::string {
      auto d = ParseDuration(text);
      if (!d.ok()) return std::string(d.status().message());
      if (d->count() % 1000 != 0) return "expected whole seconds, got \"" + text + "\"";
      return {};
    },
    "");

// Accepts a revision: a decimal number that fits in uint64_t. (CLI11's own
// conversion would wrap "-3" around and saturate an overlong number.)
const CLI::Validator kRevision(
    [](std::string& text) -> std::string {
      uint64_t value = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
        return "expected a revision number, got \"" + text + "\"";
      }
      return {};
    },
    "");

// Accepts host:port or [ipv6]:port.
const CLI::Validator kHostPort(
    [](std::string& text) -> std::string {
      auto split = SplitHostPort(text, AddressUse::kDial);
      return split.ok() ? std::string() : std::string(split.status().message());
    },
    "");

void AddInstanceArgs(CLI::App& sub, InstanceArgs& args) {
  sub.add_option("SERVICE", args.service, "Service name")->required();
  sub.add_option("ID", args.id, "Instance id")->required();
}

int Main(int argc, char** argv) {
  CLI::App app("musterctl: command-line client of the musterd service registry", "musterctl");
  // Global options may come before or after the subcommand.
  app.fallthrough();
  app.require_subcommand(1);

  GlobalOptions options;
  app.add_option("--addr", options.address, "musterd address")
      ->envname("MUSTER_ADDR")
      ->check(kHostPort)
      ->type_name("HOST:PORT")
      ->capture_default_str();
  app.add_option("--namespace", options.ns, "Namespace (default: the server's \"default\")")
      ->type_name("NS");
  app.add_flag("--json", options.json, "Print the server's JSON answer instead of a table");
  app.add_option("--timeout", options.timeout_text, "Timeout of each request")
      ->check(kDuration)
      ->type_name("DURATION")
      ->capture_default_str();

  // The chosen subcommand's work, set by its parse callback.
  std::function<absl::Status()> action;

  RegisterArgs reg;
  CLI::App* sub = app.add_subcommand("register", "Register an instance, or update it");
  AddInstanceArgs(*sub, reg.instance);
  sub->add_option("ADDRESS", reg.address, "Instance address, host:port")->required();
  reg.version_flag =
      sub->add_option("--version", reg.version, "Instance version")->type_name("VERSION");
  reg.weight_flag =
      sub->add_option("--weight", reg.weight, "Weight 1..10000 (default 100)")->type_name("N");
  reg.ttl_flag = sub->add_option("--ttl", reg.ttl, "Lease length, 0 for none (default 30)")
                     ->check(kSeconds)
                     ->type_name("SECONDS");
  sub->add_option("--meta", reg.metadata, "Metadata entry KEY=VALUE (repeatable)")
      ->check(kKeyValue)
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false);
  sub->add_option("--tag", reg.tags, "A tag the instance carries (repeatable, order kept)")
      ->type_name("TAG")
      ->allow_extra_args(false);
  sub->add_flag("--disabled", reg.disabled, "Register it disabled: kept but not handed out");
  sub->add_option("--check", reg.checks,
                  "A health check as JSON, e.g. '{\"type\":\"http\",\"target\":\"/health\","
                  "\"interval\":\"5s\"}' (repeatable; fields in docs/api.md)")
      ->type_name("JSON")
      ->allow_extra_args(false);
  sub->add_option("--http-check", reg.http_checks,
                  "An HTTP check of this path or URL, with the defaults (repeatable)")
      ->type_name("PATH|URL")
      ->allow_extra_args(false);
  sub->add_option("--tcp-check", reg.tcp_checks, "A TCP check of HOST:PORT (repeatable)")
      ->check(kHostPort)
      ->type_name("HOST:PORT")
      ->allow_extra_args(false);
  sub->add_option("--grpc-check", reg.grpc_checks,
                  "A gRPC health check of HOST:PORT (repeatable)")
      ->check(kHostPort)
      ->type_name("HOST:PORT")
      ->allow_extra_args(false);
  sub->add_option("--ttl-check", reg.ttl_check,
                  "A reported check \"ttl\" with this ttl: critical until `musterctl report` "
                  "passes it, and again when no report comes for the ttl")
      ->type_name("DURATION")
      ->allow_extra_args(false);
  sub->add_option("--token", reg.token,
                  "Token for script checks, sent as X-Muster-Token")
      ->envname("MUSTER_SCRIPT_CHECKS_TOKEN")
      ->type_name("TOKEN");
  sub->callback([&] { action = [&] { return RunRegister(options, reg); }; });

  InstanceArgs checks;
  sub = app.add_subcommand("checks", "Show an instance's health checks and their latest results");
  AddInstanceArgs(*sub, checks);
  sub->callback([&] { action = [&] { return RunChecks(options, checks); }; });

  InstanceArgs dereg;
  sub = app.add_subcommand("deregister", "Remove an instance");
  AddInstanceArgs(*sub, dereg);
  sub->callback([&] { action = [&] { return RunDeregister(options, dereg); }; });

  InstanceArgs beat;
  sub = app.add_subcommand("heartbeat", "Renew an instance's lease");
  AddInstanceArgs(*sub, beat);
  sub->callback([&] { action = [&] { return RunHeartbeat(options, beat); }; });

  ReportArgs report;
  sub = app.add_subcommand("report", "Report the state of a reported (ttl) check");
  AddInstanceArgs(*sub, report.instance);
  sub->add_option("CHECK", report.check_id, "Check id")->required();
  sub->add_option("STATUS", report.status, "passing, warning or critical")
      ->required()
      ->check(CLI::IsMember({"passing", "warning", "critical"}));
  sub->add_option("--output", report.output, "What the check says (its output)")->type_name("TEXT");
  sub->callback([&] { action = [&] { return RunReport(options, report); }; });

  ListArgs list;
  sub = app.add_subcommand("list", "List the instances of a service");
  sub->add_option("SERVICE", list.service, "Service name")->required();
  sub->add_option("--version", list.version, "Only instances of this version")
      ->type_name("VERSION");
  sub->add_flag("--healthy", list.healthy, "Only enabled instances that are not critical");
  sub->add_option("--meta", list.metadata, "Only instances with metadata KEY=VALUE (repeatable)")
      ->check(kKeyValue)
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false);
  sub->add_option("--tag", list.tags, "Only instances carrying this tag (repeatable, all must)")
      ->type_name("TAG")
      ->allow_extra_args(false);
  sub->callback([&] { action = [&] { return RunList(options, list); }; });

  sub = app.add_subcommand("services", "List the services with instance counts");
  sub->callback([&] { action = [&] { return RunServices(options); }; });

  XdsBootstrapArgs bootstrap;
  bootstrap.node_id = "muster-xds-client";
  sub = app.add_subcommand("xds-bootstrap",
                           "Print the GRPC_XDS_BOOTSTRAP JSON for gRPC clients dialing xds:///SERVICE");
  sub->add_option("--xds-server", bootstrap.server,
                  "The xDS server (default: where musterd at --addr says its xDS server is)")
      ->check(kHostPort)
      ->type_name("HOST:PORT");
  sub->add_option("--node-id", bootstrap.node_id, "The client's node id (in musterd's logs)")
      ->capture_default_str()
      ->type_name("ID");
  sub->add_option("--cluster", bootstrap.cluster, "The client's node cluster")->type_name("NAME");
  sub->add_option("--zone", bootstrap.zone, "The client's locality zone")->type_name("ZONE");
  sub->callback([&] { action = [&] { return RunXdsBootstrap(options, bootstrap); }; });

  WatchArgs watch;
  sub = app.add_subcommand("watch", "Print change events until Ctrl-C");
  sub->add_option("SERVICE", watch.services, "Services to watch (none: all in the namespace)");
  watch.from_flag =
      sub->add_option("--from", watch.from, "Start at this revision (default: new changes only)")
          ->check(kRevision)
          ->type_name("REV");
  sub->callback([&] { action = [&] { return RunWatch(options, watch); }; });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::cerr << "musterctl: " << e.what() << "\nRun 'musterctl --help' for usage.\n";
    return kExitUsage;
  }

  absl::Status status = action();
  if (!status.ok()) std::cerr << "musterctl: " << status.message() << '\n';
  return ExitCodeFor(status.code());
}

}  // namespace
}  // namespace muster::cli

int main(int argc, char** argv) {
  try {
    return muster::cli::Main(argc, argv);
  } catch (const std::exception& e) {
    // Nothing here throws by design; a stray exception is still an error
    // message and exit code 1, never an abort.
    std::cerr << "musterctl: internal error: " << e.what() << '\n';
    return muster::cli::kExitError;
  }
}
