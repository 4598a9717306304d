// musterctl's subcommands: the arguments each takes and the function that
// runs it. Each Run* takes the global options and its own arguments, prints
// its result and returns the status that decides the exit code. The commands
// that read are in read_commands.cc, those that write in write_commands.cc;
// musterctl.cc fills the arguments in from the command line.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "cli/options.h"
#include "core/strings.h"

namespace CLI {
class Option;
}  // namespace CLI

namespace muster::cli {

struct InstanceArgs {
  std::string service;
  std::string id;
};

// "ID (service S)", how the instance subcommands name their instance.
inline std::string Describe(const InstanceArgs& args) {
  return muster::StrCat(args.id, " (service ", args.service, ")");
}

struct RegisterArgs {
  InstanceArgs instance;
  std::string address;
  std::string version;
  int64_t weight = 0;
  std::string ttl;                    // whole seconds or a duration; checked by kSeconds
  std::vector<std::string> metadata;  // "k=v"
  std::vector<std::string> tags;
  bool disabled = false;
  std::vector<std::string> checks;       // JSON objects (--check)
  std::vector<std::string> http_checks;  // targets (--http-check)
  std::vector<std::string> tcp_checks;
  std::vector<std::string> grpc_checks;
  std::string ttl_check;                 // a reported check's ttl (--ttl-check)
  std::string token;                     // X-Muster-Token (script checks)
  // Which optional flags were given: only those go into the body, so the
  // server's defaults apply to the rest.
  const CLI::Option* version_flag = nullptr;
  const CLI::Option* weight_flag = nullptr;
  const CLI::Option* ttl_flag = nullptr;
};

struct ListArgs {
  std::string service;
  std::string version;
  bool healthy = false;
  std::vector<std::string> metadata;  // "k=v" filters
  std::vector<std::string> tags;      // all must be carried
};

struct WatchArgs {
  std::vector<std::string> services;  // none: every service in the namespace
  uint64_t from = 0;
  const CLI::Option* from_flag = nullptr;
};

// Commands that write (write_commands.cc).
absl::Status RunRegister(const GlobalOptions& options, const RegisterArgs& args);
absl::Status RunDeregister(const GlobalOptions& options, const InstanceArgs& args);
absl::Status RunHeartbeat(const GlobalOptions& options, const InstanceArgs& args);

struct ReportArgs {
  InstanceArgs instance;
  std::string check_id;
  std::string status;  // passing | warning | critical
  std::string output;
};
absl::Status RunReport(const GlobalOptions& options, const ReportArgs& args);

struct XdsBootstrapArgs {
  std::string server;   // host:port of the xDS server; empty: ask musterd
  std::string node_id;  // the client's node id
  std::string cluster;  // the client's node cluster (optional)
  std::string zone;     // the client's locality zone (optional)
};

// Commands that read (read_commands.cc).
absl::Status RunChecks(const GlobalOptions& options, const InstanceArgs& args);
absl::Status RunList(const GlobalOptions& options, const ListArgs& args);
absl::Status RunServices(const GlobalOptions& options);
// Prints the bootstrap JSON a gRPC client reads from GRPC_XDS_BOOTSTRAP to
// dial xds:///SERVICE through musterd; without --xds-server it asks musterd
// (/healthz) where its xDS server listens.
absl::Status RunXdsBootstrap(const GlobalOptions& options, const XdsBootstrapArgs& args);
// Prints change events until Ctrl-C (SIGINT or SIGTERM), which ends it with OK.
absl::Status RunWatch(const GlobalOptions& options, const WatchArgs& args);

}  // namespace muster::cli
