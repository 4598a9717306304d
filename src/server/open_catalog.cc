#include "server/open_catalog.h"

#include <chrono>
#include <utility>

#include <spdlog/spdlog.h>

#include "catalog/cluster_writer.h"
#include "catalog/local_committer.h"
#include "core/strings.h"
#include "store/etcd_store.h"
#include "store/rocksdb_journal.h"

namespace muster {
namespace {

CatalogOptions ViewOptions(const ServerConfig& config) {
  CatalogOptions options;
  options.history = config.history;
  options.history_bytes = config.history_bytes;
  return options;
}

absl::StatusOr<OpenedCatalog> OpenEtcd(const ServerConfig& config) {
  EtcdStoreOptions etcd_options;
  etcd_options.client.endpoints = config.etcd_endpoints;
  etcd_options.client.dial_timeout = config.etcd_dial_timeout;
  etcd_options.client.username = config.etcd_username;
  etcd_options.client.password = config.etcd_password;
  etcd_options.client.ca_file = config.etcd_ca;
  etcd_options.client.cert_file = config.etcd_cert;
  etcd_options.client.key_file = config.etcd_key;
  etcd_options.prefix = config.etcd_prefix;
  etcd_options.election_ttl = std::chrono::duration_cast<std::chrono::seconds>(config.election_ttl);
  auto connected = EtcdStore::Connect(etcd_options);
  if (!connected.ok()) return absl::UnavailableError(StrCat("etcd: ", MessageOf(connected.status())));
  std::shared_ptr<EtcdStore> etcd = *std::move(connected);
  OpenedCatalog opened;
  opened.catalog = std::make_unique<Catalog>(
      ViewOptions(config), std::make_unique<ClusterWriter>(config.limits, etcd.get()));
  opened.store = etcd;
  if (auto s = opened.catalog->Start(); !s.ok()) return s;
  spdlog::info("cluster mode on etcd under {}: {} instances, revision {}", config.etcd_prefix,
               opened.catalog->instance_count(), opened.catalog->revision());
  return opened;
}

absl::StatusOr<OpenedCatalog> OpenEmbedded(const ServerConfig& config) {
  RocksDbJournalOptions store_options;
  if (config.recover == "point-in-time") {
    store_options.recovery = RocksDbJournalOptions::Recovery::kPointInTime;
  }
  store_options.min_free_bytes = config.min_free_disk_kb < 0 ? -1 : config.min_free_disk_kb * 1024;
  auto journal_opened = RocksDbJournal::Open(config.data_dir, store_options);
  if (!journal_opened.ok()) return journal_opened.status();
  std::shared_ptr<RocksDbJournal> journal = *std::move(journal_opened);
  LocalCommitterOptions committer;
  committer.limits = config.limits;
  committer.self_preservation.threshold = config.self_preservation_threshold;
  committer.self_preservation.window = config.self_preservation_window;
  committer.self_preservation.min_leases = config.self_preservation_min_leases;
  OpenedCatalog opened;
  opened.catalog = std::make_unique<Catalog>(
      ViewOptions(config), std::make_unique<LocalCommitter>(committer, journal.get()));
  opened.store = journal;
  opened.close = [journal = journal.get()] { return journal->Flush(); };
  const auto load_start = std::chrono::steady_clock::now();
  if (auto s = opened.catalog->Start(); !s.ok()) {
    return absl::Status(s.code(), StrCat("cannot load the store in ", config.data_dir, ": ",
                                         MessageOf(s)));
  }
  const auto load_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - load_start);
  spdlog::info("store {} loaded in {} ms: {} instances, revision {}", config.data_dir,
               load_ms.count(), opened.catalog->instance_count(), opened.catalog->revision());
  return opened;
}

}  // namespace

absl::StatusOr<OpenedCatalog> OpenCatalog(const ServerConfig& config) {
  return config.store == "etcd" ? OpenEtcd(config) : OpenEmbedded(config);
}

}  // namespace muster
