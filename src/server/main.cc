// musterd: the Muster registry server.
#include <cstdio>
#include <thread>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "catalog/catalog.h"
#include "core/strings.h"
#include "server/config.h"
#include "server/http_server.h"
#include "store/rocksdb_journal.h"

int main(int argc, char** argv) {
  using namespace muster;
  ParsedConfig parsed = ParseConfig(argc, argv);
  if (parsed.exit) {
    std::fputs(parsed.message.c_str(), parsed.exit_code == 0 ? stdout : stderr);
    if (!parsed.message.empty() && parsed.message.back() != '\n') std::fputc('\n', stderr);
    return parsed.exit_code;
  }
  const ServerConfig& config = parsed.config;
  spdlog::set_default_logger(spdlog::stderr_color_mt("musterd"));
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  spdlog::flush_on(spdlog::level::info);

  auto journal = RocksDbJournal::Open(config.data_dir);
  if (!journal.ok()) {
    spdlog::critical("{}", MessageOf(journal.status()));
    return 1;
  }
  CatalogOptions options;
  options.limits = config.limits;
  options.history = config.history;
  Catalog catalog(options, journal->get());
  if (auto s = catalog.Start(); !s.ok()) {
    spdlog::critical("cannot load the store in {}: {}", config.data_dir, MessageOf(s));
    return 1;
  }
  spdlog::info("store {} loaded: {} instances, revision {}", config.data_dir,
               catalog.instance_count(), catalog.revision());

  unsigned threads = config.threads ? config.threads : std::max(1u, std::thread::hardware_concurrency());
  {
    HttpServer server(config, catalog);
    auto bound = server.Listen();
    if (!bound.ok()) {
      spdlog::critical("{}", MessageOf(bound.status()));
      return 1;
    }
    spdlog::info("musterd listening on {} ({} I/O threads)", *bound, threads);
    server.Run(threads);
    // Finish the writes already queued before the server (and the connections
    // their answers would go to) is torn down.
    catalog.Stop();
  }
  if (auto s = (*journal)->Flush(); !s.ok()) {
    spdlog::error("flush on shutdown: {}", MessageOf(s));
    return 1;
  }
  spdlog::info("stopped cleanly");
  return 0;
}
