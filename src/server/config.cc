#include "server/config.h"

#include <CLI/CLI.hpp>
#include <toml++/toml.h>

#include <cstdlib>

#include "core/strings.h"
#include "core/duration.h"
#include "core/validation.h"

namespace muster {
namespace {

// A duration setting: the TOML file and flags both give it as a string ("30s").
struct DurationSetting {
  const char* name;
  std::chrono::milliseconds* value;
  const char* help;
  std::string text;
};

// A byte-size setting: the TOML file gives a number of bytes or a string with
// a unit ("64MiB"), flags the string (memory_budget.h).
struct ByteSetting {
  const char* name;
  size_t* value;
  size_t min;
  const char* help;
  std::string text;
};

absl::Status LoadToml(const std::string& path, ServerConfig& c,
                      std::vector<DurationSetting>& durations, std::vector<ByteSetting>& sizes) {
  toml::table t;
  try {
    t = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return absl::InvalidArgumentError(StrCat("config ", path, ": ", e.description()));
  }
  auto str = [&](const char* key, std::string& out) {
    if (auto v = t[key].value<std::string>()) out = *v;
  };
  auto num = [&](const char* key, auto& out) {
    if (auto v = t[key].value<int64_t>()) out = static_cast<std::remove_reference_t<decltype(out)>>(*v);
  };
  str("listen", c.listen);
  if (const toml::array* hosts = t["allowed_hosts"].as_array()) {
    for (const toml::node& h : *hosts) {
      if (auto v = h.value<std::string>()) c.allowed_hosts.push_back(*v);
    }
  }
  str("data_dir", c.data_dir);
  str("log_level", c.log_level);
  num("threads", c.threads);
  num("max_connections", c.max_connections);
  num("max_connections_per_client", c.max_connections_per_client);
  num("history", c.history);
  num("list_cache_mb", c.list_cache_mb);
  num("max_name_length", c.limits.max_name_length);
  num("max_body_bytes", c.limits.max_body_bytes);
  num("max_instances_per_service", c.limits.max_instances_per_service);
  str("geerpc_path", c.geerpc_path);
  str("geerpc_header_prefix", c.geerpc_header_prefix);
  str("geerpc_service", c.geerpc_service);
  if (auto v = t["self_preservation_threshold"].value<double>()) c.self_preservation_threshold = *v;
  num("self_preservation_min_leases", c.self_preservation_min_leases);
  str("store", c.store);
  if (const toml::array* endpoints = t["etcd_endpoints"].as_array()) {
    for (const toml::node& e : *endpoints) {
      if (auto v = e.value<std::string>()) c.etcd_endpoints.push_back(*v);
    }
  }
  str("etcd_prefix", c.etcd_prefix);
  str("etcd_username", c.etcd_username);
  str("etcd_password", c.etcd_password);
  str("etcd_ca", c.etcd_ca);
  str("etcd_cert", c.etcd_cert);
  str("etcd_key", c.etcd_key);
  str("advertise", c.advertise);
  if (auto v = t["consul_api"].value<bool>()) c.consul_api = *v;
  str("datacenter", c.datacenter);
  str("node_name", c.node_name);
  str("xds_listen", c.xds_listen);
  str("xds_zone_key", c.xds_zone_key);
  num("xds_max_streams", c.xds_max_streams);
  str("script_checks_token", c.script_checks_token);
  if (auto v = t["enable_script_checks"].value<bool>()) c.enable_script_checks = *v;
  if (auto v = t["webhook_tls_skip_verify"].value<bool>()) c.webhook_tls_skip_verify = *v;
  num("webhook_queue", c.webhook_queue);
  num("webhook_attempts", c.webhook_attempts);
  if (const toml::array* urls = t["webhooks"].as_array()) {
    for (const toml::node& u : *urls) {
      if (auto v = u.value<std::string>()) c.webhooks.push_back(*v);
    }
  }
  for (DurationSetting& d : durations) {
    if (auto v = t[d.name].value<std::string>()) d.text = *v;
  }
  for (ByteSetting& b : sizes) {
    if (auto v = t[b.name].value<int64_t>()) b.text = StrCat(*v);
    if (auto v = t[b.name].value<std::string>()) b.text = *v;
  }
  for (auto&& [key, value] : t) {
    bool known = false;
    for (const char* k : {"listen", "allowed_hosts", "data_dir", "log_level", "threads", "max_connections",
                          "max_connections_per_client", "history", "list_cache_mb", "max_name_length",
                          "max_body_bytes", "max_instances_per_service", "geerpc_path",
                          "geerpc_header_prefix", "geerpc_service", "store", "etcd_endpoints",
                          "etcd_prefix", "etcd_username", "etcd_password", "etcd_ca", "etcd_cert",
                          "etcd_key", "advertise", "self_preservation_threshold",
                          "self_preservation_min_leases", "enable_script_checks",
                          "script_checks_token", "webhooks", "webhook_queue", "webhook_attempts",
                          "webhook_tls_skip_verify", "consul_api", "datacenter", "node_name",
                          "xds_listen", "xds_zone_key", "xds_max_streams"}) {
      known |= key.str() == k;
    }
    for (const DurationSetting& d : durations) known |= key.str() == d.name;
    for (const ByteSetting& b : sizes) known |= key.str() == b.name;
    if (!known) {
      return absl::InvalidArgumentError(
          StrCat("config ", path, ": unknown setting \"", key.str(), "\""));
    }
  }
  return absl::OkStatus();
}

}  // namespace

ParsedConfig ParseConfig(int argc, char** argv) {
  ParsedConfig out;
  ServerConfig& c = out.config;
  std::vector<DurationSetting> durations = {
      {"default_wait", &c.default_wait, "blocking-query wait when none is given", ""},
      {"max_wait", &c.max_wait, "longest blocking-query wait a client may ask for", ""},
      {"idle_timeout", &c.idle_timeout, "close a connection without a complete request after", ""},
      {"write_timeout", &c.write_timeout, "close a connection whose client does not read for", ""},
      {"watch_keepalive", &c.watch_keepalive, "comment line on quiet watch streams every", ""},
      {"shutdown_grace", &c.shutdown_grace, "how long a shutdown waits for in-flight requests", ""},
      {"geerpc_timeout", &c.geerpc_timeout, "lease of a GeeRPC server after each POST", ""},
      {"etcd_dial_timeout", &c.etcd_dial_timeout, "how long to wait for the first etcd member", ""},
      {"election_ttl", &c.election_ttl, "cluster mode: lease of the leader election", ""},
      {"self_preservation_window", &c.self_preservation_window,
       "self-preservation counts the leases lapsing within", ""},
      {"webhook_timeout", &c.webhook_timeout, "each webhook attempt must be answered within", ""},
  };
  // Defaults from this host's memory (memory_budget.h).
  c.limits.max_catalog_bytes = DefaultCatalogBytes();
  std::vector<ByteSetting> sizes = {
      {"history_bytes", &c.history_bytes, size_t{64} << 10,
       "bytes of change events retained for watch resume (default: a sixteenth of memory, "
       "16MiB to 256MiB)", ""},
      {"max_service_bytes", &c.limits.max_service_bytes, size_t{64} << 10,
       "memory the instances of one service may hold", ""},
      {"max_catalog_bytes", &c.limits.max_catalog_bytes, size_t{1} << 20,
       "memory all instances together may hold (default: a quarter of memory)", ""},
  };
  auto fail = [&](std::string message, int code) {
    out.exit = true;
    out.exit_code = code;
    out.message = std::move(message);
    return out;
  };

  // The file is read first, so that flags override it.
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string path;
    if (arg == "--config" && i + 1 < argc) path = argv[i + 1];
    if (arg.starts_with("--config=")) path = std::string(arg.substr(9));
    if (!path.empty()) {
      if (auto s = LoadToml(path, c, durations, sizes); !s.ok()) return fail(std::string(s.message()), 2);
    }
  }

  CLI::App app{"musterd — the Muster service registry"};
  std::string config_path;
  app.add_option("--config", config_path, "TOML file with settings (flags override it)");
  app.add_option("--listen", c.listen, "host:port to serve HTTP on (port 0 picks a free one)")
      ->capture_default_str();
  app.add_option("--allowed-hosts", c.allowed_hosts,
                 "on a loopback listener, host names a request's Host may give besides loopback "
                 "names and addresses (repeatable; others are refused against DNS rebinding)")
      ->delimiter(',');
  app.add_option("--data-dir", c.data_dir, "directory of the embedded store")->capture_default_str();
  app.add_option("--log-level", c.log_level, "trace, debug, info, warn, error")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_option("--threads", c.threads, "I/O threads (0: one per core)")->capture_default_str();
  app.add_option("--max-connections", c.max_connections,
                 "connections held open at most; over it the idlest are closed first "
                 "(0: the open-file limit less a reserve)")
      ->capture_default_str();
  app.add_option("--max-connections-per-client", c.max_connections_per_client,
                 "connections one client address may hold (0: three quarters of --max-connections)")
      ->capture_default_str();
  app.add_option("--history", c.history, "change events retained for watch resume")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{100'000'000}));
  app.add_option("--list-cache-mb", c.list_cache_mb,
                 "MiB of serialized list answers kept while their service is unchanged (0: none)")
      ->capture_default_str()
      ->check(CLI::Range(size_t{0}, size_t{1} << 20));
  app.add_option("--max-name-length", c.limits.max_name_length, "longest name")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1024}));
  app.add_option("--max-body-bytes", c.limits.max_body_bytes, "largest request body")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1024}, size_t{64} << 20));
  app.add_option("--max-instances-per-service", c.limits.max_instances_per_service,
                 "most instances one service may hold")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{100'000'000}));
  for (DurationSetting& d : durations) {
    std::string flag = "--" + std::string(d.name);
    for (char& ch : flag) ch = ch == '_' ? '-' : ch;
    app.add_option(flag, d.text, d.help)->default_str(FormatDuration(*d.value));
  }
  for (ByteSetting& b : sizes) {
    std::string flag = "--" + std::string(b.name);
    for (char& ch : flag) ch = ch == '_' ? '-' : ch;
    app.add_option(flag, b.text, b.help)->default_str(FormatByteSize(*b.value));
  }
  app.add_option("--geerpc-path", c.geerpc_path, "path of the GeeRPC registry endpoint")
      ->capture_default_str();
  app.add_option("--geerpc-header-prefix", c.geerpc_header_prefix,
                 "header prefix of the GeeRPC protocol")
      ->capture_default_str();
  app.add_option("--geerpc-service", c.geerpc_service, "service GeeRPC servers appear under")
      ->capture_default_str();
  app.add_option("--self-preservation-threshold", c.self_preservation_threshold,
                 "stop expiring when more than this share of leases lapses within the window "
                 "(0: never)")
      ->capture_default_str();
  app.add_option("--self-preservation-min-leases", c.self_preservation_min_leases,
                 "fewer leases than this never trigger self-preservation")
      ->capture_default_str();
  app.add_option("--store", c.store, "embedded (RocksDB in --data-dir) or etcd (cluster mode)")
      ->capture_default_str();
  app.add_option("--recover", c.recover,
                 "when the embedded store's write-ahead log lost acknowledged changes: none "
                 "(refuse to start) or point-in-time (start with what precedes the damage)")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "point-in-time"}));
  app.add_option("--min-free-disk-kb", c.min_free_disk_kb,
                 "refuse writes while less than this many KiB would stay free under --data-dir "
                 "(-1: 1/64 of the file system, 64 KiB to 64 MiB; 0: none)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{-1}, int64_t{1} << 40));
  app.add_option("--etcd-endpoints", c.etcd_endpoints,
                 "etcd members, comma-separated host:port or http(s)://host:port")
      ->delimiter(',');
  app.add_option("--etcd-prefix", c.etcd_prefix, "etcd key prefix of this deployment")
      ->capture_default_str();
  app.add_option("--etcd-username", c.etcd_username, "etcd user (auth enabled)");
  app.add_option("--etcd-password", c.etcd_password,
                 "etcd password (better: the MUSTER_ETCD_PASSWORD environment variable)");
  app.add_option("--etcd-ca", c.etcd_ca, "PEM CA file to verify etcd's certificate (TLS)");
  app.add_option("--etcd-cert", c.etcd_cert, "PEM client certificate for etcd (TLS)");
  app.add_option("--etcd-key", c.etcd_key, "PEM key of the client certificate");
  app.add_flag("--enable-script-checks", c.enable_script_checks,
               "let registrations carrying --script-checks-token run commands on this host as "
               "health checks (dangerous; off by default)");
  app.add_option("--script-checks-token", c.script_checks_token,
                 "token a registration with a script check must send as X-Muster-Token "
                 "(better: the MUSTER_SCRIPT_CHECKS_TOKEN environment variable)");
  app.add_option("--webhook", c.webhooks, "URL to POST health transitions to (repeatable)");
  app.add_option("--webhook-queue", c.webhook_queue, "events waiting per webhook before the oldest is dropped")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1'000'000}));
  app.add_option("--webhook-attempts", c.webhook_attempts, "tries per event and webhook")
      ->capture_default_str()
      ->check(CLI::Range(1u, 100u));
  app.add_flag("--webhook-tls-skip-verify", c.webhook_tls_skip_verify,
               "do not verify the certificates of https webhooks");
  app.add_option("--advertise", c.advertise,
                 "cluster mode: host:port others reach this node at (default: the listen address)");
  app.add_option("--consul-api", c.consul_api,
                 "serve the Consul HTTP API under /v1/ (true or false)")
      ->capture_default_str();
  app.add_option("--datacenter", c.datacenter, "datacenter name the Consul API reports")
      ->capture_default_str();
  app.add_option("--node-name", c.node_name,
                 "node name the Consul API reports (default: the host name)");
  app.add_option("--xds-listen", c.xds_listen,
                 "host:port of the xDS (ADS) gRPC server for xds:/// clients; empty: none")
      ->capture_default_str();
  app.add_option("--xds-zone-key", c.xds_zone_key,
                 "instance metadata key whose value is the endpoint's locality zone in xDS")
      ->capture_default_str();
  app.add_option("--xds-max-streams", c.xds_max_streams, "xDS streams served at once")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1'000'000}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::ostringstream os, err;
    int code = app.exit(e, os, err);
    return fail(os.str() + err.str(), code == 0 ? 0 : 2);
  }

  for (DurationSetting& d : durations) {
    if (d.text.empty()) continue;
    auto v = ParseDuration(d.text);
    if (!v.ok()) return fail(StrCat(d.name, ": ", v.status().message()), 2);
    *d.value = *v;
  }
  for (ByteSetting& b : sizes) {
    if (b.text.empty()) continue;
    auto v = ParseByteSize(b.text);
    if (!v.ok()) return fail(StrCat(b.name, ": ", v.status().message()), 2);
    if (*v < b.min) return fail(StrCat(b.name, " must be at least ", FormatByteSize(b.min)), 2);
    *b.value = *v;
  }
  if (c.max_wait < c.default_wait) c.default_wait = c.max_wait;
  if (c.geerpc_timeout > std::chrono::seconds(c.limits.max_ttl_seconds)) {
    return fail("geerpc_timeout is longer than the longest TTL (24h)", 2);
  }
  if (auto s = ValidateName("geerpc_service", c.geerpc_service, c.limits); !s.ok()) {
    return fail(std::string(s.message()), 2);
  }
  if (auto s = ValidateName("datacenter", c.datacenter, c.limits); !s.ok()) {
    return fail(std::string(s.message()), 2);
  }
  if (!c.node_name.empty()) {
    if (auto s = ValidateName("node_name", c.node_name, c.limits); !s.ok()) {
      return fail(std::string(s.message()), 2);
    }
  }
  if (!c.xds_listen.empty()) {
    if (auto s = SplitHostPort(c.xds_listen, AddressUse::kListen); !s.ok()) {
      return fail(StrCat("--xds-listen: ", s.status().message()), 2);
    }
  }
  if (c.xds_max_streams < 1 || c.xds_max_streams > 1'000'000) {
    return fail("xds_max_streams must be 1..1000000", 2);
  }
  if (!c.xds_zone_key.empty()) {
    if (auto s = ValidateName("xds_zone_key", c.xds_zone_key, c.limits); !s.ok()) {
      return fail(std::string(s.message()), 2);
    }
  }
  if (c.geerpc_path.empty() || c.geerpc_path.front() != '/') {
    return fail("geerpc_path must start with '/'", 2);
  }
  if (!(c.self_preservation_threshold >= 0 && c.self_preservation_threshold < 1)) {
    return fail("self_preservation_threshold must be in [0, 1)", 2);
  }
  if (c.store != "embedded" && c.store != "etcd") {
    return fail(StrCat("--store must be embedded or etcd, not '", c.store, "'"), 2);
  }
  if (c.etcd_password.empty()) {
    if (const char* password = std::getenv("MUSTER_ETCD_PASSWORD")) c.etcd_password = password;
  }
  if (c.script_checks_token.empty()) {
    if (const char* token = std::getenv("MUSTER_SCRIPT_CHECKS_TOKEN")) c.script_checks_token = token;
  }
  if (c.enable_script_checks && c.script_checks_token.size() < 16) {
    return fail("--enable-script-checks needs a --script-checks-token (or MUSTER_SCRIPT_CHECKS_TOKEN) "
                "of at least 16 characters: script checks run commands on this host, so only "
                "callers holding the token may register them", 2);
  }
  if (c.store == "etcd") {
    if (c.etcd_endpoints.empty()) return fail("--store etcd needs --etcd-endpoints", 2);
    if (!c.etcd_password.empty() && c.etcd_username.empty()) {
      return fail("an etcd password needs --etcd-username", 2);
    }
    if (c.etcd_cert.empty() != c.etcd_key.empty()) {
      return fail("--etcd-cert and --etcd-key go together", 2);
    }
    if (c.election_ttl < std::chrono::seconds(1) || c.election_ttl % std::chrono::seconds(1) != std::chrono::milliseconds(0)) {
      return fail("election_ttl must be whole seconds, at least 1s", 2);
    }
  }
  return out;
}

}  // namespace muster
