// musterctl: the command-line client of musterd. It registers, deregisters and
// heartbeats instances, lists instances and services, and follows the watch
// stream. docs/cli.md is its manual.
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

#include <signal.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/duration.h"
#include "muster/instance.h"
#include "core/json_codec.h"
#include "core/strings.h"
#include "core/validation.h"
#include "core/wire/answers.h"
#include "core/wire/http_client.h"
#include "core/wire/paths.h"

namespace muster::cli {
namespace {

namespace json = boost::json;
using wire::HttpResponse;

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

constexpr std::string_view kDefaultAddress = "127.0.0.1:8470";
constexpr std::string_view kDefaultTimeout = "10s";
// How often a watch wakes up to check for Ctrl-C.
constexpr std::chrono::seconds kWatchPoll{1};

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
InstanceKey KeyOf(const GlobalOptions& options, std::string_view service, std::string_view id) {
  return InstanceKey{options.ns, std::string(service), std::string(id)};
}

// Splits "k=v" at the first '='. The CLI validator has already checked the form.
std::pair<std::string, std::string> SplitKeyValue(const std::string& text) {
  size_t eq = text.find('=');
  return {text.substr(0, eq), text.substr(eq + 1)};
}

// ---------------------------------------------------------------------------
// Reading answers.

absl::Status UnexpectedAnswer(std::string_view why) {
  return absl::InternalError(muster::StrCat("unexpected answer from musterd: ", why));
}

absl::StatusOr<json::object> ParseObject(const std::string& text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return UnexpectedAnswer(ec.message());
  if (!v.is_object()) return UnexpectedAnswer("not a JSON object");
  return std::move(v.get_object());
}

// A non-negative integer field; 0 when absent or of another type.
uint64_t GetUnsigned(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return 0;
  if (v->is_uint64()) return v->get_uint64();
  if (v->is_int64() && v->get_int64() >= 0) return static_cast<uint64_t>(v->get_int64());
  return 0;
}

// A string field; empty when absent or of another type.
std::string GetString(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

// The array field `key`; UnexpectedAnswer when missing.
absl::StatusOr<const json::array*> GetArray(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_array()) {
    return UnexpectedAnswer(muster::StrCat("no \"", key, "\" array"));
  }
  return &v->get_array();
}

// ---------------------------------------------------------------------------
// Output.

// Prints a body verbatim (--json), ending it with a newline.
void PrintRaw(const std::string& body) {
  std::cout << body;
  if (body.empty() || body.back() != '\n') std::cout << '\n';
}

// Prints rows under a header, each column padded to its widest cell and
// separated by two spaces; the last column is not padded.
void PrintTable(const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths(header.size());
  auto measure = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  };
  measure(header);
  for (const auto& row : rows) measure(row);
  auto print = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << '\n';
  };
  print(header);
  for (const auto& row : rows) print(row);
}

// "k=v,k=v" in key order, "-" when empty.
std::string FormatMetadata(const std::map<std::string, std::string>& metadata) {
  if (metadata.empty()) return "-";
  std::string out;
  for (const auto& [key, value] : metadata) {
    if (!out.empty()) out += ',';
    muster::StrAppend(&out, key, "=", value);
  }
  return out;
}

std::string FormatTtl(uint64_t seconds) {
  if (seconds == 0) return "none";
  return FormatDuration(std::chrono::seconds(seconds));
}

// ---------------------------------------------------------------------------
// Subcommands. Each takes the global options and its own arguments, prints
// its result and returns the status that decides the exit code.

// One request of a subcommand; `target` from core/wire/paths.h.
struct Request {
  std::string method;
  std::string target;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers = {};
};

// Prints a successful answer as text; gets the response and its JSON object.
using Render = std::function<absl::Status(const HttpResponse&, const json::object&)>;

// Sends `request` (bounded by --timeout) and prints the answer: verbatim with
// --json, else through `render`. A non-2xx answer becomes the error status the
// server described.
absl::Status CallAndPrint(const GlobalOptions& options, Request request, const Render& render) {
  wire::HttpRequest http_request;
  http_request.method = std::move(request.method);
  http_request.target = std::move(request.target);
  http_request.body = std::move(request.body);
  http_request.headers = std::move(request.headers);
  wire::HttpClient http(options.address);
  auto response = http.Do(http_request, options.timeout());
  if (!response.ok()) return response.status();
  if (response->status < 200 || response->status > 299) return StatusFromResponse(*response);
  if (options.json) {
    PrintRaw(response->body);
    return absl::OkStatus();
  }
  auto answer = ParseObject(response->body);
  if (!answer.ok()) return answer.status();
  return render(*response, *answer);
}

struct InstanceArgs {
  std::string service;
  std::string id;
};

// "ID (service S)", how the instance subcommands name their instance.
std::string Describe(const InstanceArgs& args) {
  return muster::StrCat(args.id, " (service ", args.service, ")");
}

struct RegisterArgs {
  InstanceArgs instance;
  std::string address;
  std::string version;
  int64_t weight = 0;
  std::string ttl;                    // whole seconds or a duration; checked by kSeconds
  std::vector<std::string> metadata;  // "k=v"
  bool disabled = false;
  std::vector<std::string> checks;       // JSON objects (--check)
  std::vector<std::string> http_checks;  // targets (--http-check)
  std::vector<std::string> tcp_checks;
  std::vector<std::string> grpc_checks;
  std::string token;                     // X-Muster-Token (script checks)
  // Which optional flags were given: only those go into the body, so the
  // server's defaults apply to the rest.
  const CLI::Option* version_flag = nullptr;
  const CLI::Option* weight_flag = nullptr;
  const CLI::Option* ttl_flag = nullptr;
};

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
  return CallAndPrint(options, {"DELETE", wire::InstanceTarget(KeyOf(options, args.service, args.id)), {}},
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
          if (const json::value* live = c.if_contains("live"); live != nullptr && live->is_object()) {
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

struct ListArgs {
  std::string service;
  std::string version;
  bool healthy = false;
  std::vector<std::string> metadata;  // "k=v" filters
};

absl::Status RunList(const GlobalOptions& options, const ListArgs& args) {
  wire::ListParams params;
  params.ns = options.ns;
  params.version = args.version;
  if (args.healthy) params.healthy = true;
  for (const auto& kv : args.metadata) params.metadata.push_back(SplitKeyValue(kv));
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
                          FormatMetadata(in.metadata)});
        }
        PrintTable({"ID", "ADDRESS", "VERSION", "WEIGHT", "STATUS", "HEALTH", "TTL", "METADATA"},
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

struct WatchArgs {
  std::vector<std::string> services;  // none: every service in the namespace
  uint64_t from = 0;
  const CLI::Option* from_flag = nullptr;
};

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
  sub->callback([&] { action = [&] { return RunList(options, list); }; });

  sub = app.add_subcommand("services", "List the services with instance counts");
  sub->callback([&] { action = [&] { return RunServices(options); }; });

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
