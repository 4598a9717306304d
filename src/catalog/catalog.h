// Catalog: the registry — its view (catalog_view.h: instances, revisions,
// watch hub, reads) and the write path that keeps the view up to date
// (write_path.h: LocalCommitter embedded, ClusterWriter on etcd).
//
// Everything above the catalog reads through the view and writes through
// Register, Deregister, SetCheckState and the heartbeat, and never asks
// which write path it has: musterd's main picks one once.
//
//   auto catalog = std::make_unique<Catalog>(
//       options, std::make_unique<LocalCommitter>(committer_options, journal));
//   catalog->Start();
//
// Thread-safe. Write callbacks run on a write path thread: they must be
// quick (post the answer elsewhere).
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "catalog/catalog_view.h"
#include "catalog/write_path.h"
#include "muster/instance.h"

namespace muster {

struct CatalogOptions {
  size_t history = 65536;  // events kept for watch resume
  // Bytes of events kept for watch resume (WatchHub: whichever of the two
  // bounds is reached first compacts).
  size_t history_bytes = size_t{256} << 20;
};

class Catalog : public CatalogView {
 public:
  using WriteResult = muster::WriteResult;
  using WriteCallback = muster::WriteCallback;
  using HeartbeatCallback = muster::HeartbeatCallback;

  Catalog(CatalogOptions options, std::unique_ptr<WritePath> writes);
  ~Catalog();
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  // Fills the view from the store and starts taking writes. Once, before
  // anything else.
  absl::Status Start() { return writes_->Start(*this); }
  // Finishes every write already taken, then stops; later writes fail with
  // Unavailable.
  void Stop() { writes_->Stop(); }

  // The writes (write_path.h says what each answers).
  void Register(Instance instance, WriteCallback done) {
    writes_->Register(std::move(instance), std::move(done));
  }
  void Deregister(InstanceKey key, WriteCallback done) {
    writes_->Deregister(std::move(key), std::move(done));
  }
  void SetCheckState(InstanceKey key, Check check, WriteCallback done) {
    writes_->SetCheckState(std::move(key), std::move(check), std::move(done));
  }
  std::optional<absl::StatusOr<uint32_t>> TryHeartbeat(const InstanceKey& key) {
    return writes_->TryHeartbeat(key);
  }
  void Heartbeat(InstanceKey key, HeartbeatCallback done) {
    writes_->Heartbeat(std::move(key), std::move(done));
  }
  absl::Status StandForLeadership(std::string candidate, LeadershipListener on_change) {
    return writes_->StandForLeadership(std::move(candidate), std::move(on_change));
  }
  WritePathStatus write_status() const { return writes_->status(); }

 private:
  const std::unique_ptr<WritePath> writes_;
};

}  // namespace muster
