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
#include "server/open_catalog.h"
#include "server/xds/xds_server.h"

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

  spdlog::info("memory: watch history up to {} events and {}; instances up to {} per service "
               "and {} in all (docs/operations.md, Memory)",
               config.history, FormatByteSize(config.history_bytes),
               FormatByteSize(config.limits.max_service_bytes),
               FormatByteSize(config.limits.max_catalog_bytes));
  absl::StatusOr<OpenedCatalog> opened = OpenCatalog(config);
  if (!opened.ok()) {
    spdlog::critical("{}", MessageOf(opened.status()));
    return 1;
  }
  Catalog* catalog = opened->catalog.get();

  unsigned threads = config.threads ? config.threads : std::max(1u, std::thread::hardware_concurrency());
  {
    HttpServer server(config, *catalog);
    auto bound = server.Listen();
    if (!bound.ok()) {
      spdlog::critical("{}", MessageOf(bound.status()));
      return 1;
    }
    // The xDS server serves from the same catalog, started before the line that
    // tools wait for says musterd listens.
    std::unique_ptr<xds::XdsServer> xds;
    if (!config.xds_listen.empty()) {
      xds::XdsOptions options;
      options.listen = config.xds_listen;
      options.zone_key = config.xds_zone_key;
      options.max_streams = config.xds_max_streams;
      options.limits = config.limits;
      auto started = xds::XdsServer::Start(std::move(options), *catalog);
      if (!started.ok()) {
        spdlog::critical("{}", MessageOf(started.status()));
        return 1;
      }
      xds = *std::move(started);
      spdlog::info("xDS (ADS) for xds:/// gRPC clients on {}", xds->address());
      server.SetXdsServer(xds.get());
    }
    spdlog::info("musterd listening on {} ({} I/O threads)", *bound, threads);
    // Active health checks run on the I/O threads, on the one node that
    // leads (the only node when embedded; the elected one in cluster mode).
    HealthCheckerOptions health;
    health.env.executor = server.executor();
    health.env.enable_script_checks = config.enable_script_checks;
    if (!config.webhooks.empty()) {
      health.notify = [hooks = webhooks.get()](std::string json) { hooks->Notify(std::move(json)); };
      server.SetWebhookNotifier(webhooks.get());
    }
    std::shared_ptr<HealthChecker> checker = HealthChecker::Create(*catalog, std::move(health));
    const std::string advertise = config.advertise.empty() ? *bound : config.advertise;
    auto stood = catalog->StandForLeadership(advertise, [weak = std::weak_ptr(checker)](bool leading) {
      if (auto c = weak.lock()) c->SetLeading(leading);
    });
    if (!stood.ok()) {
      spdlog::critical("leader election: {}", MessageOf(stood));
      return 1;
    }
    server.SetHealthChecker(checker.get());
    server.Run(threads);
    if (xds != nullptr) xds->Stop();
    checker->Stop();
    // Finish the writes already queued before the server (and the connections
    // their answers would go to) is torn down.
    catalog->Stop();
  }
  webhooks->Stop();
  if (opened->close) {
    if (auto s = std::move(opened->close)(); !s.ok()) {
      spdlog::error("flush on shutdown: {}", MessageOf(s));
      return 1;
    }
  }
  spdlog::info("stopped cleanly");
  return 0;
}
