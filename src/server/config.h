// musterd's configuration: defaults, an optional TOML file (--config) and
// command-line flags, in rising precedence.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/limits.h"
#include "server/memory_budget.h"

namespace muster {

struct ServerConfig {
  std::string listen = "127.0.0.1:8470";
  // Names a request's Host may give besides loopback names and addresses,
  // when musterd listens on a loopback address (http_request.h).
  std::vector<std::string> allowed_hosts;
  std::string data_dir = "./muster-data";
  std::string log_level = "info";
  unsigned threads = 0;  // I/O threads; 0: one per core
  Limits limits;
  size_t history = 65536;
  // Bytes of change events retained for watch resume (memory_budget.h).
  size_t history_bytes = DefaultHistoryBytes();
  // Serialized list answers kept while their service is unchanged
  // (list_cache.h); 0 turns the cache off.
  size_t list_cache_mb = 64;
  std::chrono::milliseconds default_wait = std::chrono::minutes(5);
  std::chrono::milliseconds max_wait = std::chrono::minutes(10);
  // Connections held open at most, in all and from one client address
  // (connection_table.h); 0: from the open-file limit (main.cc).
  size_t max_connections = 0;
  size_t max_connections_per_client = 0;
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);
  std::chrono::milliseconds write_timeout = std::chrono::seconds(30);
  std::chrono::milliseconds watch_keepalive = std::chrono::seconds(15);
  std::chrono::milliseconds shutdown_grace = std::chrono::seconds(10);
  std::string geerpc_path = "/_geerpc_/registry";
  std::string geerpc_header_prefix = "X-Geerpc-";
  std::string geerpc_service = "geerpc";
  std::chrono::milliseconds geerpc_timeout = std::chrono::minutes(5);
  // The Consul HTTP API under /v1/ (docs/consul.md): served unless turned
  // off; the datacenter and node name it reports (node: the host name when
  // empty).
  bool consul_api = true;
  std::string datacenter = "dc1";
  std::string node_name;
  // The xDS server (docs/grpc.md): the gRPC address it listens on (empty:
  // none), the metadata key whose value is an endpoint's locality zone, and
  // the streams it serves at once.
  std::string xds_listen = "127.0.0.1:8471";
  std::string xds_zone_key = "zone";
  size_t xds_max_streams = 10000;

  // Embedded mode: stop expiring when more than this share of all leases
  // lapses within the window (0: never stop), given at least min_leases.
  double self_preservation_threshold = 0.5;
  std::chrono::milliseconds self_preservation_window = std::chrono::minutes(1);
  size_t self_preservation_min_leases = 10;

  // Active health checks. Script checks run commands on this host: off unless
  // enabled, and then only registrations carrying the token may add them
  // (header X-Muster-Token).
  bool enable_script_checks = false;
  std::string script_checks_token;  // also from MUSTER_SCRIPT_CHECKS_TOKEN
  // Webhooks told of every health transition (http:// or https:// URLs).
  std::vector<std::string> webhooks;
  size_t webhook_queue = 1024;
  uint32_t webhook_attempts = 5;
  std::chrono::milliseconds webhook_timeout = std::chrono::seconds(5);
  bool webhook_tls_skip_verify = false;

  // "embedded" (RocksDB under data_dir) or "etcd" (cluster mode).
  std::string store = "embedded";
  // Embedded store, flags only (docs/operations.md): "none" refuses to start
  // when the write-ahead log lost acknowledged changes; "point-in-time"
  // starts with what precedes the damage and accepts the loss.
  std::string recover = "none";
  // Embedded store: writes are refused while less than this would remain
  // free on the disk under data_dir; -1: 1/64 of the file system (64 KiB to
  // 64 MiB); 0: none.
  int64_t min_free_disk_kb = -1;
  // Cluster mode: etcd members (host:port or http(s)://host:port) and where
  // and how to reach them.
  std::vector<std::string> etcd_endpoints;
  std::string etcd_prefix = "/muster";
  std::string etcd_username;
  std::string etcd_password;  // also from the environment: MUSTER_ETCD_PASSWORD
  std::string etcd_ca;
  std::string etcd_cert;
  std::string etcd_key;
  std::chrono::milliseconds etcd_dial_timeout = std::chrono::seconds(5);
  // Cluster mode: the address other nodes and clients reach this node at
  // (shown as the leader's); empty: the address it listens on.
  std::string advertise;
  // Cluster mode: lease of the leader election; a dead leader is replaced
  // within about this long.
  std::chrono::milliseconds election_ttl = std::chrono::seconds(5);
};

// The outcome of reading the command line: a config to run with, or an exit
// (for --help or a usage error) with the text to print and the exit code.
struct ParsedConfig {
  ServerConfig config;
  bool exit = false;
  int exit_code = 0;
  std::string message;
};

ParsedConfig ParseConfig(int argc, char** argv);

}  // namespace muster
