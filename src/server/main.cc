// musterd: the Muster registry server.
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "catalog/catalog.h"
#include "core/strings.h"
#include "server/config.h"
#include "server/connection_table.h"
#include "server/health/health_checker.h"
#include "server/webhooks/webhook_notifier.h"
#include "server/http_server.h"
#include "store/etcd_store.h"
#include "store/rocksdb_journal.h"

int main(int argc, char** argv) {
  using namespace muster;
  ParsedConfig parsed = ParseConfig(argc, argv);
  if (parsed.exit) {
    std::fputs(parsed.message.c_str(), parsed.exit_code == 0 ? stdout : stderr);
    if (!parsed.message.empty() && parsed.message.back() != '\n') std::fputc('\n', stderr);
    return parsed.exit_code;
  }
  // Every connection takes a descriptor: raise the soft limit as far as
  // the hard one allows, and draw the connection bounds from it.
  const uint64_t open_files = RaiseOpenFileLimit();
  if (parsed.config.max_connections == 0) {
    parsed.config.max_connections = DefaultMaxConnections(open_files);
  }
  if (parsed.config.max_connections_per_client == 0) {
    parsed.config.max_connections_per_client = std::max<size_t>(1, parsed.config.max_connections * 3 / 4);
  }
  const ServerConfig& config = parsed.config;
  spdlog::set_default_logger(spdlog::stderr_color_mt("musterd"));
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  spdlog::flush_on(spdlog::level::info);
  spdlog::info("open-file limit {}: at most {} connections, {} per client address", open_files,
               config.max_connections, config.max_connections_per_client);

  // Webhooks first: a bad URL is a configuration error, found before the
  // store is opened.
  WebhookOptions hooks;
  hooks.urls = config.webhooks;
  hooks.queue_limit = config.webhook_queue;
  hooks.attempts = config.webhook_attempts;
  hooks.timeout = config.webhook_timeout;
  hooks.tls_skip_verify = config.webhook_tls_skip_verify;
  auto started_hooks = WebhookNotifier::Start(std::move(hooks));
  if (!started_hooks.ok()) {
    spdlog::critical("webhooks: {}", MessageOf(started_hooks.status()));
    return 2;
  }
  std::unique_ptr<WebhookNotifier> webhooks = *std::move(started_hooks);
  if (!config.webhooks.empty()) {
    spdlog::info("health transitions are posted to {} webhook(s)", config.webhooks.size());
  }

  CatalogOptions options;
  options.limits = config.limits;
  options.history = config.history;
  options.history_bytes = config.history_bytes;
  spdlog::info("memory: watch history up to {} events and {}; instances up to {} per service "
               "and {} in all (docs/operations.md, Memory)",
               config.history, FormatByteSize(config.history_bytes),
               FormatByteSize(config.limits.max_service_bytes),
               FormatByteSize(config.limits.max_catalog_bytes));
  options.self_preservation.threshold = config.self_preservation_threshold;
  options.self_preservation.window = config.self_preservation_window;
  options.self_preservation.min_leases = config.self_preservation_min_leases;
  // Exactly one of the two stores backs the catalog.
  std::unique_ptr<RocksDbJournal> journal;
  std::unique_ptr<EtcdStore> etcd;
  std::unique_ptr<Catalog> catalog;
  if (config.store == "etcd") {
    EtcdStoreOptions etcd_options;
    etcd_options.client.endpoints = config.etcd_endpoints;
    etcd_options.client.dial_timeout = config.etcd_dial_timeout;
    etcd_options.client.username = config.etcd_username;
    etcd_options.client.password = config.etcd_password;
    etcd_options.client.ca_file = config.etcd_ca;
    etcd_options.client.cert_file = config.etcd_cert;
    etcd_options.client.key_file = config.etcd_key;
    etcd_options.prefix = config.etcd_prefix;
    auto connected = EtcdStore::Connect(etcd_options);
    if (!connected.ok()) {
      spdlog::critical("etcd: {}", MessageOf(connected.status()));
      return 1;
    }
    etcd = *std::move(connected);
    catalog = std::make_unique<Catalog>(options, etcd.get());
    if (auto s = catalog->Start(); !s.ok()) {
      spdlog::critical("{}", MessageOf(s));
      return 1;
    }
    spdlog::info("cluster mode on etcd under {}: {} instances, revision {}", config.etcd_prefix,
                 catalog->instance_count(), catalog->revision());
  } else {
    RocksDbJournalOptions store_options;
    if (config.recover == "point-in-time") {
      store_options.recovery = RocksDbJournalOptions::Recovery::kPointInTime;
    }
    store_options.min_free_bytes =
        config.min_free_disk_kb < 0 ? -1 : config.min_free_disk_kb * 1024;
    auto opened = RocksDbJournal::Open(config.data_dir, store_options);
    if (!opened.ok()) {
      spdlog::critical("{}", MessageOf(opened.status()));
      return 1;
    }
    journal = *std::move(opened);
    catalog = std::make_unique<Catalog>(options, journal.get());
    const auto load_start = std::chrono::steady_clock::now();
    if (auto s = catalog->Start(); !s.ok()) {
      spdlog::critical("cannot load the store in {}: {}", config.data_dir, MessageOf(s));
      return 1;
    }
    const auto load_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - load_start);
    spdlog::info("store {} loaded in {} ms: {} instances, revision {}", config.data_dir,
                 load_ms.count(), catalog->instance_count(), catalog->revision());
  }

  unsigned threads = config.threads ? config.threads : std::max(1u, std::thread::hardware_concurrency());
  {
    HttpServer server(config, *catalog);
    auto bound = server.Listen();
    if (!bound.ok()) {
      spdlog::critical("{}", MessageOf(bound.status()));
      return 1;
    }
    spdlog::info("musterd listening on {} ({} I/O threads)", *bound, threads);
    if (etcd != nullptr) {
      const std::string advertise = config.advertise.empty() ? *bound : config.advertise;
      auto campaign = etcd->Campaign(
          advertise, std::chrono::duration_cast<std::chrono::seconds>(config.election_ttl));
      if (!campaign.ok()) {
        spdlog::critical("leader election: {}", MessageOf(campaign));
        return 1;
      }
    }
    // Active health checks run on the I/O threads; in cluster mode only on
    // the elected leader.
    HealthCheckerOptions health;
    health.env.executor = server.executor();
    health.env.enable_script_checks = config.enable_script_checks;
    if (!config.webhooks.empty()) {
      health.notify = [hooks = webhooks.get()](std::string json) { hooks->Notify(std::move(json)); };
      server.SetWebhookNotifier(webhooks.get());
    }
    std::shared_ptr<HealthChecker> checker = HealthChecker::Create(*catalog, std::move(health));
    if (etcd == nullptr) {
      checker->Start();
    } else {
      checker->RunWhileLeading([&catalog] { return catalog->cluster_role().leading; },
                               std::chrono::milliseconds(250));
    }
    server.SetHealthChecker(checker.get());
    server.Run(threads);
    checker->Stop();
    // Finish the writes already queued before the server (and the connections
    // their answers would go to) is torn down.
    catalog->Stop();
  }
  webhooks->Stop();
  if (journal != nullptr) {
    if (auto s = journal->Flush(); !s.ok()) {
      spdlog::error("flush on shutdown: {}", MessageOf(s));
      return 1;
    }
  }
  spdlog::info("stopped cleanly");
  return 0;
}
