// The catalog's cluster mode: writes go to the ClusterStore, and the view is
// rebuilt and updated from the store's feed (see catalog.h).
#include <algorithm>

#include <spdlog/spdlog.h>

#include "catalog/catalog.h"
#include "core/checks.h"
#include "core/footprint.h"
#include "core/strings.h"

namespace muster {

// Hands the store's feed to the catalog.
class Catalog::ClusterFeed final : public ClusterStore::Feed {
 public:
  explicit ClusterFeed(Catalog& catalog) : catalog_(catalog) {}
  void Reset(std::vector<Instance> instances, uint64_t revision) override {
    catalog_.ResetView(std::move(instances), revision);
  }
  void Apply(std::vector<Event> events, uint64_t revision) override {
    catalog_.ApplyEvents(std::move(events), revision);
  }
  void Interrupted(const absl::Status& status) override {
    {
      std::lock_guard lock(catalog_.waiters_mu_);
      if (!catalog_.following_) return;
      catalog_.following_ = false;
    }
    spdlog::warn("cluster store feed interrupted, serving the last known state: {}",
                 MessageOf(status));
  }

 private:
  Catalog& catalog_;
};

Catalog::Catalog(CatalogOptions options, ClusterStore* cluster)
    : options_(std::move(options)),
      journal_(nullptr),
      cluster_(cluster),
      leases_(options_.clock),
      preservation_(options_.self_preservation, options_.clock),
      hub_(options_.history, options_.history_bytes) {}

absl::Status Catalog::StartClustered() {
  feed_ = std::make_shared<ClusterFeed>(*this);
  waiter_thread_ = std::thread([this] { WaiterLoop(); });
  absl::Status started = cluster_->Start(feed_.get());
  if (!started.ok()) {
    {
      std::lock_guard lock(waiters_mu_);
      waiters_stopping_ = true;
    }
    waiters_cv_.notify_all();
    waiter_thread_.join();
    return started;
  }
  std::lock_guard lock(queue_mu_);
  started_ = true;
  return absl::OkStatus();
}

void Catalog::StopClustered() {
  // Writes in progress answer (and wait for their revision) first.
  cluster_->Stop();
  {
    std::lock_guard lock(waiters_mu_);
    waiters_stopping_ = true;
  }
  waiters_cv_.notify_all();
  if (waiter_thread_.joinable()) waiter_thread_.join();
}

bool Catalog::following() const {
  std::lock_guard lock(waiters_mu_);
  return following_;
}

void Catalog::Heartbeat(InstanceKey key, HeartbeatCallback done) {
  if (cluster_ == nullptr) {
    std::move(done)(Heartbeat(key));
    return;
  }
  {
    std::lock_guard lock(queue_mu_);
    if (!started_ || stopping_) {
      std::move(done)(absl::UnavailableError("the registry is shutting down"));
      return;
    }
  }
  cluster_->Heartbeat(std::move(key), std::move(done));
}

ClusterStore::WriteDone Catalog::AnswerWhenApplied(WriteCallback done) {
  return [this, done = std::move(done)](absl::StatusOr<ClusterStore::Written> written) mutable {
    if (!written.ok()) {
      std::move(done)(written.status());
      return;
    }
    WriteResult result{std::move(written->instance), written->created, written->revision};
    if (!written->changed) {
      std::move(done)(std::move(result));
      return;
    }
    const uint64_t revision = result.revision;
    WhenApplied(revision, [done = std::move(done), result = std::move(result)]() mutable {
      std::move(done)(std::move(result));
    });
  };
}

void Catalog::ClusterWrite(bool is_register, Instance instance, InstanceKey key,
                           WriteCallback done) {
  {
    std::lock_guard lock(queue_mu_);
    if (!started_ || stopping_) {
      std::move(done)(absl::UnavailableError("the registry is shutting down"));
      return;
    }
  }
  if (!is_register) {
    cluster_->Deregister(std::move(key), AnswerWhenApplied(std::move(done)));
    return;
  }
  {
    // The limit holds per node's view: nodes registering into one service at
    // the same moment may together pass it by a few (docs/cluster.md).
    std::shared_lock lock(mu_);
    auto service = services_.find(ServiceKeyRef{key.ns, key.service});
    if (service != services_.end() && !service->second.instances.contains(key.id) &&
        service->second.instances.size() >= options_.limits.max_instances_per_service) {
      lock.unlock();
      std::move(done)(absl::ResourceExhaustedError(
          StrCat("service ", key.service, " already has the maximum of ",
                 options_.limits.max_instances_per_service, " instances")));
      return;
    }
    // The same holds for the bytes limits.
    int64_t bytes = static_cast<int64_t>(ApproximateBytes(instance));
    int64_t service_bytes = 0;
    if (service != services_.end()) {
      service_bytes = static_cast<int64_t>(service->second.bytes);
      if (auto it = service->second.instances.find(key.id); it != service->second.instances.end()) {
        bytes -= static_cast<int64_t>(it->second.bytes);
      }
    }
    absl::Status fits = CheckBytesLimit(key.service, bytes, service_bytes,
                                        static_cast<int64_t>(instance_bytes_));
    if (!fits.ok()) {
      lock.unlock();
      std::move(done)(std::move(fits));
      return;
    }
  }
  cluster_->Register(std::move(instance), AnswerWhenApplied(std::move(done)));
}

void Catalog::ClusterSetCheckState(InstanceKey key, Check check, WriteCallback done) {
  {
    std::lock_guard lock(queue_mu_);
    if (!started_ || stopping_) {
      std::move(done)(absl::UnavailableError("the registry is shutting down"));
      return;
    }
  }
  cluster_->SetCheckState(std::move(key), std::move(check), AnswerWhenApplied(std::move(done)));
}

void Catalog::WhenApplied(uint64_t revision, absl::AnyInvocable<void() &&> then) {
  {
    std::lock_guard lock(waiters_mu_);
    if (applied_ < revision && !waiters_stopping_) {
      waiters_.push_back(Waiter{revision, std::chrono::steady_clock::now(), std::move(then)});
      return;
    }
  }
  std::move(then)();
}

void Catalog::Applied(uint64_t revision) {
  std::vector<Waiter> ready;
  {
    std::lock_guard lock(waiters_mu_);
    applied_ = std::max(applied_, revision);
    following_ = true;
    auto split = std::partition(waiters_.begin(), waiters_.end(),
                                [&](const Waiter& w) { return w.revision > applied_; });
    ready.assign(std::make_move_iterator(split), std::make_move_iterator(waiters_.end()));
    waiters_.erase(split, waiters_.end());
  }
  for (Waiter& w : ready) std::move(w.then)();
}

void Catalog::WaiterLoop() {
  std::unique_lock lock(waiters_mu_);
  while (true) {
    waiters_cv_.wait_for(lock, std::chrono::milliseconds(100));
    const auto now = std::chrono::steady_clock::now();
    std::vector<Waiter> due;
    auto split = std::partition(waiters_.begin(), waiters_.end(), [&](const Waiter& w) {
      return !waiters_stopping_ && now - w.since < kClusterApplyWait;
    });
    due.assign(std::make_move_iterator(split), std::make_move_iterator(waiters_.end()));
    waiters_.erase(split, waiters_.end());
    const bool stopping = waiters_stopping_;
    lock.unlock();
    if (!due.empty() && !stopping) {
      spdlog::warn("{} write(s) answered before this node's view applied them (feed lagging)",
                   due.size());
    }
    for (Waiter& w : due) std::move(w.then)();
    if (stopping) return;
    lock.lock();
  }
}

void Catalog::ResetView(std::vector<Instance> instances, uint64_t revision) {
  {
    std::unique_lock lock(mu_);
    // Every service, known before or now, counts as changed at `revision`, so
    // that blocking queries on it wake and read the new state.
    for (auto& [key, service] : services_) {
      service.instances.clear();
      service.bytes = 0;
      service.last_change = revision;
    }
    instance_count_ = 0;
    instance_bytes_ = 0;
    for (Instance& in : instances) {
      ServiceState& service = services_[ServiceKey{in.ns, in.service}];
      service.last_change = revision;
      const std::string id = in.id;
      PutLocked(service, id, std::make_shared<const Instance>(std::move(in)));
    }
    revision_ = revision;
    // Watchers reading from before `revision` are told to list again.
    hub_.Reset(revision);
  }
  PublishChanges({}, true);
  Applied(revision);
}

void Catalog::ApplyEvents(std::vector<Event> events, uint64_t revision) {
  {
    std::unique_lock lock(mu_);
    for (Event& event : events) {
      // etcd says "updated"; a change of check states alone is a health event.
      if (event.type == ChangeType::kUpdated) {
        const Record* before = FindLocked(KeyOf(*event.instance));
        if (before != nullptr &&
            OnlyCheckStatesDiffer(*before->instance, *event.instance, &event.check)) {
          event.type = ChangeType::kHealth;
        }
      }
      ApplyEventLocked(event);
    }
    revision_ = std::max(revision_, revision);
  }
  // As in RunBatch: the writers waiting for this revision are answered
  // before the watchers are woken.
  WatchHub::Wakeups wakeups = PublishChanges(std::move(events), false);
  Applied(revision);
  hub_.Wake(std::move(wakeups));
}

void Catalog::ApplyEventLocked(const Event& event) {
  const Instance& in = *event.instance;
  ServiceState& service = services_[ServiceKey{in.ns, in.service}];
  service.last_change = std::max(service.last_change, event.revision);
  if (event.type == ChangeType::kDeregistered || event.type == ChangeType::kExpired) {
    EraseLocked(service, in.id);
    return;
  }
  PutLocked(service, in.id, event.instance);
}

}  // namespace muster
