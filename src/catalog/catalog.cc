#include "catalog/catalog.h"

#include <algorithm>
#include <utility>

#include "core/checks.h"
#include "core/footprint.h"
#include "core/strings.h"

namespace muster {

Catalog::Catalog(CatalogOptions options, Journal* journal)
    : options_(std::move(options)),
      journal_(journal),
      leases_(options_.clock),
      preservation_(options_.self_preservation, options_.clock),
      hub_(options_.history, options_.history_bytes) {}

Catalog::~Catalog() { Stop(); }

absl::Status Catalog::Start() {
  if (cluster_ != nullptr) return StartClustered();
  uint64_t revision = 0;
  if (journal_ != nullptr) {
    auto snapshot = journal_->Load();
    if (!snapshot.ok()) return snapshot.status();
    std::lock_guard lock(mu_);
    revision = snapshot->revision;
    for (Instance& in : snapshot->instances) {
      InstanceKey key = KeyOf(in);
      ServiceState& service = services_[ServiceKey{in.ns, in.service}];
      service.last_change = std::max(service.last_change, in.modify_revision);
      revision = std::max(revision, in.modify_revision);
      const LeaseId lease =
          in.ttl_seconds > 0 ? leases_.Grant(key, std::chrono::seconds(in.ttl_seconds)) : 0;
      const std::string id = in.id;
      PutLocked(service, id, std::make_shared<const Instance>(std::move(in))).lease = lease;
    }
    revision_ = revision;
  }
  hub_.Reset(revision);
  std::lock_guard<std::mutex> lock(queue_mu_);
  started_ = true;
  committer_ = std::thread([this] { CommitterLoop(); });
  return absl::OkStatus();
}

void Catalog::Stop() {
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (cluster_ != nullptr) {
    StopClustered();
    return;
  }
  queue_cv_.notify_all();
  if (committer_.joinable()) committer_.join();
}

void Catalog::SweepNow() {
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    sweep_now_ = true;
  }
  queue_cv_.notify_all();
}

void Catalog::Register(Instance instance, WriteCallback done) {
  if (cluster_ != nullptr) {
    InstanceKey key = KeyOf(instance);
    ClusterWrite(true, std::move(instance), std::move(key), std::move(done));
    return;
  }
  Op op{Op::kRegister, KeyOf(instance), nullptr, nullptr, 0, std::move(done)};
  op.instance = std::make_shared<const Instance>(std::move(instance));
  Enqueue(std::move(op));
}

void Catalog::Deregister(InstanceKey key, WriteCallback done) {
  if (cluster_ != nullptr) {
    ClusterWrite(false, Instance{}, std::move(key), std::move(done));
    return;
  }
  Enqueue(Op{Op::kDeregister, std::move(key), nullptr, nullptr, 0, std::move(done)});
}

void Catalog::SetCheckState(InstanceKey key, Check check, WriteCallback done) {
  if (cluster_ != nullptr) {
    ClusterSetCheckState(std::move(key), std::move(check), std::move(done));
    return;
  }
  Enqueue(Op{Op::kCheck, std::move(key), nullptr, std::make_shared<const Check>(std::move(check)),
             0, std::move(done)});
}

void Catalog::Enqueue(Op op) {
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    if (started_ && !stopping_) {
      queue_.push_back(std::move(op));
      queue_cv_.notify_one();
      return;
    }
  }
  std::move(op.done)(absl::UnavailableError("the registry is shutting down"));
}

absl::StatusOr<uint32_t> Catalog::Heartbeat(const InstanceKey& key) {
  if (cluster_ != nullptr) {
    return absl::FailedPreconditionError("in cluster mode a heartbeat goes to the cluster store");
  }
  std::shared_lock lock(mu_);
  const Record* record = FindLocked(key);
  if (record == nullptr) {
    return absl::NotFoundError(
        StrCat("instance ", key.id, " of service ", key.service, " is not registered"));
  }
  if (record->lease != 0 && !leases_.Renew(record->lease)) {
    return absl::NotFoundError(
        StrCat("the lease of instance ", key.id, " of service ", key.service, " has lapsed"));
  }
  return record->instance->ttl_seconds;
}

const Catalog::Record* Catalog::FindLocked(const InstanceKey& key) const {
  auto s = services_.find(ServiceKeyRef{key.ns, key.service});
  if (s == services_.end()) return nullptr;
  auto i = s->second.instances.find(key.id);
  return i == s->second.instances.end() ? nullptr : &i->second;
}

void Catalog::CommitterLoop() {
  for (;;) {
    std::vector<Op> batch;
    {
      std::unique_lock<std::mutex> lock(queue_mu_);
      queue_cv_.wait_for(lock, options_.sweep_interval,
                         [&] { return !queue_.empty() || stopping_ || sweep_now_; });
      if (stopping_ && queue_.empty()) break;
      sweep_now_ = false;
      if (queue_.size() <= options_.max_batch) {
        batch.swap(queue_);
      } else {
        auto end = queue_.begin() + static_cast<ptrdiff_t>(options_.max_batch);
        batch.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(end));
        queue_.erase(queue_.begin(), end);
      }
    }
    // Lapsed leases go first, so that a re-registration in the same batch
    // creates the instance anew after its expiry. Expiries the store failed
    // to write come first of all; they are tried again once per sweep (or
    // with the next write), not in a loop while the store keeps failing.
    std::vector<Op> retry = std::exchange(retry_, {});
    auto expired = leases_.TakeExpired(options_.max_batch);
    std::chrono::nanoseconds longest_ttl{0};
    for (const LeaseTable::Expired& e : expired) {
      longest_ttl = std::max(longest_ttl, std::chrono::nanoseconds(e.ttl_ns));
    }
    if (preservation_.Hold(expired.size(), leases_.size(), longest_ttl)) {
      for (LeaseTable::Expired& e : expired) leases_.Restore(std::move(e));
      expired.clear();
    }
    if (!expired.empty() || !retry.empty()) {
      std::vector<Op> ops = std::move(retry);
      ops.reserve(ops.size() + expired.size() + batch.size());
      for (auto& e : expired) {
        ops.push_back(Op{Op::kExpire, std::move(e.key), nullptr, nullptr, e.id, {}});
      }
      for (Op& op : batch) ops.push_back(std::move(op));
      batch.swap(ops);
    }
    if (!batch.empty()) RunBatch(std::move(batch));
  }
}

void Catalog::RunBatch(std::vector<Op> batch) {
  std::vector<Outcome> outcomes(batch.size());
  std::vector<Journal::Mutation> mutations;
  uint64_t revision;
  {
    std::shared_lock lock(mu_);
    revision = revision_;
    // Effects of earlier ops of this batch: the instance, or null when deleted.
    absl::flat_hash_map<InstanceKey, std::shared_ptr<const Instance>> overlay;
    // New instances and bytes per service in this batch, for the limits.
    absl::flat_hash_map<ServiceKey, int64_t, ServiceKeyHash, ServiceKeyEq> added;
    absl::flat_hash_map<ServiceKey, int64_t, ServiceKeyHash, ServiceKeyEq> added_bytes;
    int64_t added_total_bytes = 0;
    auto add_bytes = [&](const InstanceKey& key, int64_t bytes) {
      added_bytes[ServiceKey{key.ns, key.service}] += bytes;
      added_total_bytes += bytes;
    };
    auto current = [&](const InstanceKey& key) -> std::shared_ptr<const Instance> {
      if (auto it = overlay.find(key); it != overlay.end()) return it->second;
      const Record* r = FindLocked(key);
      return r ? r->instance : nullptr;
    };
    auto remove = [&](Op& op, Outcome& out, ChangeType type, std::shared_ptr<const Instance> last) {
      out.changes = true;
      out.type = type;
      out.instance = std::move(last);
      out.revision = ++revision;
      add_bytes(op.key, -static_cast<int64_t>(ApproximateBytes(*out.instance)));
      overlay[op.key] = nullptr;
      --added[ServiceKey{op.key.ns, op.key.service}];
      mutations.push_back({op.key, nullptr});
    };
    for (size_t i = 0; i < batch.size(); ++i) {
      Op& op = batch[i];
      Outcome& out = outcomes[i];
      std::shared_ptr<const Instance> cur = current(op.key);
      switch (op.kind) {
        case Op::kRegister: {
          if (cur && cur->SameSpec(*op.instance)) {
            out.renew_only = true;
            out.instance = cur;
            out.revision = revision;
            break;
          }
          ServiceKey service{op.key.ns, op.key.service};
          auto s = services_.find(service);
          if (!cur) {
            int64_t count = s == services_.end() ? 0 : static_cast<int64_t>(s->second.instances.size());
            if (count + added[service] >= static_cast<int64_t>(options_.limits.max_instances_per_service)) {
              out.status = absl::ResourceExhaustedError(
                  StrCat("service ", op.key.service, " already has the maximum of ",
                               options_.limits.max_instances_per_service, " instances"));
              break;
            }
          }
          auto stored = std::make_shared<Instance>(*op.instance);
          // The copy's bytes, as the catalog will hold it.
          const int64_t bytes = static_cast<int64_t>(ApproximateBytes(*stored)) -
                                (cur ? static_cast<int64_t>(ApproximateBytes(*cur)) : 0);
          const int64_t service_bytes =
              (s == services_.end() ? 0 : static_cast<int64_t>(s->second.bytes)) +
              added_bytes[service];
          out.status = CheckBytesLimit(op.key.service, bytes, service_bytes,
                                       static_cast<int64_t>(instance_bytes_) + added_total_bytes);
          if (!out.status.ok()) break;
          if (!cur) ++added[service];
          add_bytes(op.key, bytes);
          out.revision = ++revision;
          stored->AdoptCheckStates(cur.get());
          stored->create_revision = cur ? cur->create_revision : out.revision;
          stored->modify_revision = out.revision;
          out.changes = true;
          out.type = cur ? ChangeType::kUpdated : ChangeType::kRegistered;
          out.instance = stored;
          overlay[op.key] = stored;
          mutations.push_back({op.key, std::move(stored)});
          break;
        }
        case Op::kDeregister:
          if (!cur) {
            out.status = absl::NotFoundError(StrCat(
                "instance ", op.key.id, " of service ", op.key.service, " is not registered"));
            break;
          }
          remove(op, out, ChangeType::kDeregistered, std::move(cur));
          break;
        case Op::kCheck: {
          if (!cur) {
            out.status = absl::NotFoundError(StrCat(
                "instance ", op.key.id, " of service ", op.key.service, " is not registered"));
            break;
          }
          auto next = WithCheckState(*cur, *op.check);
          if (!next.ok()) {
            out.status = next.status();
            break;
          }
          const Check* before = cur->FindCheck(op.check->id);
          if (before->status == op.check->status && before->output == op.check->output) {
            out.instance = cur;
            out.revision = revision;
            break;
          }
          auto stored = std::make_shared<Instance>(*std::move(next));
          // A check's output may grow the instance; a health write is never
          // refused for it (the output is bounded, health/probe.cc).
          add_bytes(op.key, static_cast<int64_t>(ApproximateBytes(*stored)) -
                                static_cast<int64_t>(ApproximateBytes(*cur)));
          out.revision = ++revision;
          stored->modify_revision = out.revision;
          out.changes = true;
          out.type = ChangeType::kHealth;
          out.check = op.check->id;
          out.instance = stored;
          overlay[op.key] = stored;
          mutations.push_back({op.key, std::move(stored)});
          break;
        }
        case Op::kExpire: {
          // Only when the lease that lapsed still belongs to the stored instance.
          if (overlay.contains(op.key)) break;
          const Record* r = FindLocked(op.key);
          if (r == nullptr || r->lease != op.lease) break;
          remove(op, out, ChangeType::kExpired, r->instance);
          break;
        }
      }
    }
  }

  if (!mutations.empty() && journal_ != nullptr) {
    absl::Status status = journal_->Commit(mutations, revision);
    store_write_failing_.store(!status.ok(), std::memory_order_relaxed);
    if (!status.ok()) {
      // Nothing was written or applied. Decisions later in the batch may rest
      // on earlier ones, so every caller hears the failure; lapsed leases are
      // queued again so the instances still expire.
      // Each caller gets its own Status: they are answered on other threads,
      // and a shared one would share its heap-allocated message across them.
      const std::string failed =
          StrCat("the store could not write the change: ", status.message());
      for (Op& op : batch) {
        if (op.kind == Op::kExpire) {
          retry_.push_back(std::move(op));
        } else {
          std::move(op.done)(absl::UnavailableError(failed));
        }
      }
      return;
    }
  }

  std::vector<Event> events;
  {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < batch.size(); ++i) {
      const Outcome& out = outcomes[i];
      if (!out.status.ok() || (!out.changes && !out.renew_only)) continue;
      ApplyLocked(batch[i], out);
      if (out.changes) events.push_back(Event{out.revision, out.type, out.instance, out.check});
    }
    revision_ = revision;
  }
  // The events are readable from here on; the writers are answered before
  // the watchers are woken, so that a write to a service with thousands of
  // watchers is not answered behind thousands of wake-ups.
  WatchHub::Wakeups wakeups = PublishChanges(std::move(events), false);

  for (size_t i = 0; i < batch.size(); ++i) {
    Op& op = batch[i];
    if (!op.done) continue;
    Outcome& out = outcomes[i];
    if (!out.status.ok()) {
      std::move(op.done)(std::move(out.status));
      continue;
    }
    std::move(op.done)(WriteResult{std::move(out.instance),
                                   out.changes && out.type == ChangeType::kRegistered,
                                   out.renew_only ? revision : out.revision});
  }
  hub_.Wake(std::move(wakeups));
}

void Catalog::ApplyLocked(const Op& op, const Outcome& out) {
  ServiceState& service = services_[ServiceKey{op.key.ns, op.key.service}];
  if (op.kind == Op::kCheck) {
    // The lease stays as it is.
    if (!service.instances.contains(op.key.id) || !out.changes) return;
    PutLocked(service, op.key.id, out.instance);
    service.last_change = out.revision;
    return;
  }
  if (op.kind == Op::kRegister) {
    Record& record = PutLocked(service, op.key.id, out.instance);
    if (out.changes) service.last_change = out.revision;
    std::chrono::seconds ttl(out.instance->ttl_seconds);
    if (ttl.count() == 0) {
      if (record.lease != 0) leases_.Revoke(record.lease);
      record.lease = 0;
    } else if (record.lease == 0 || !leases_.Refresh(record.lease, ttl)) {
      record.lease = leases_.Grant(op.key, ttl);
    }
    return;
  }
  auto it = service.instances.find(op.key.id);
  if (it == service.instances.end()) return;
  if (it->second.lease != 0) leases_.Revoke(it->second.lease);
  EraseLocked(service, op.key.id);
  service.last_change = out.revision;
}

Catalog::Record& Catalog::PutLocked(ServiceState& service, const std::string& id,
                                    std::shared_ptr<const Instance> instance) {
  auto [it, inserted] = service.instances.try_emplace(id);
  Record& record = it->second;
  if (inserted) ++instance_count_;
  service.bytes -= record.bytes;
  instance_bytes_ -= record.bytes;
  record.bytes = ApproximateBytes(*instance);
  record.instance = std::move(instance);
  service.bytes += record.bytes;
  instance_bytes_ += record.bytes;
  return record;
}

bool Catalog::EraseLocked(ServiceState& service, const std::string& id) {
  auto it = service.instances.find(id);
  if (it == service.instances.end()) return false;
  service.bytes -= it->second.bytes;
  instance_bytes_ -= it->second.bytes;
  service.instances.erase(it);
  --instance_count_;
  return true;
}

absl::Status Catalog::CheckBytesLimit(std::string_view service, int64_t added,
                                      int64_t service_bytes, int64_t total_bytes) const {
  // Shrinking always fits, so that a service over its limit (the limit was
  // lowered) can still be trimmed.
  if (added <= 0) return absl::OkStatus();
  const Limits& limits = options_.limits;
  if (static_cast<uint64_t>(service_bytes + added) > limits.max_service_bytes) {
    return absl::ResourceExhaustedError(
        StrCat("service ", service, " would hold ", service_bytes + added,
               " bytes of instances, more than its limit of ", limits.max_service_bytes,
               " (max_service_bytes): deregister instances or make them smaller"));
  }
  if (static_cast<uint64_t>(total_bytes + added) > limits.max_catalog_bytes) {
    return absl::ResourceExhaustedError(
        StrCat("the registry would hold ", total_bytes + added,
               " bytes of instances, more than its limit of ", limits.max_catalog_bytes,
               " (max_catalog_bytes)"));
  }
  return absl::OkStatus();
}

bool Catalog::Passes(const Instance& in, const ListFilter& filter) {
  if (!filter.version.empty() && in.version != filter.version) return false;
  if (filter.healthy_only &&
      (in.status != InstanceStatus::kEnabled || in.health == Health::kCritical)) {
    return false;
  }
  for (const auto& [key, value] : filter.metadata) {
    auto it = in.metadata.find(key);
    if (it == in.metadata.end() || it->second != value) return false;
  }
  return true;
}

Catalog::ListResult Catalog::List(std::string_view ns, std::string_view service,
                                  const ListFilter& filter) const {
  ListResult out;
  std::shared_lock lock(mu_);
  out.revision = revision_;
  auto s = services_.find(ServiceKeyRef{ns, service});
  if (s == services_.end()) return out;
  out.service_revision = s->second.last_change;
  out.instances.reserve(s->second.instances.size());
  for (const auto& [id, record] : s->second.instances) {
    if (Passes(*record.instance, filter)) out.instances.push_back(record.instance);
  }
  return out;
}

uint64_t Catalog::ServiceRevision(std::string_view ns, std::string_view service) const {
  std::shared_lock lock(mu_);
  auto s = services_.find(ServiceKeyRef{ns, service});
  return s == services_.end() ? 0 : s->second.last_change;
}

std::vector<ServiceSummary> Catalog::Services(std::string_view ns, uint64_t* revision) const {
  std::vector<ServiceSummary> out;
  std::shared_lock lock(mu_);
  if (revision != nullptr) *revision = revision_;
  ListFilter healthy;
  healthy.healthy_only = true;
  for (const auto& [key, state] : services_) {
    if (key.ns != ns || state.instances.empty()) continue;
    ServiceSummary summary{key.service, state.instances.size(), 0};
    for (const auto& [id, record] : state.instances) {
      if (Passes(*record.instance, healthy)) ++summary.healthy;
    }
    out.push_back(std::move(summary));
  }
  std::sort(out.begin(), out.end(),
            [](const ServiceSummary& a, const ServiceSummary& b) { return a.name < b.name; });
  return out;
}

Catalog::Revisions Catalog::RevisionsOf(std::string_view ns, std::string_view service) const {
  std::shared_lock lock(mu_);
  auto s = services_.find(ServiceKeyRef{ns, service});
  return Revisions{revision_, s == services_.end() ? 0 : s->second.last_change};
}

uint64_t Catalog::revision() const {
  std::shared_lock lock(mu_);
  return revision_;
}

std::shared_ptr<const Instance> Catalog::Get(const InstanceKey& key) const {
  std::shared_lock lock(mu_);
  const Record* r = FindLocked(key);
  return r != nullptr ? r->instance : nullptr;
}

std::vector<std::shared_ptr<const Instance>> Catalog::AllInstances() const {
  std::vector<std::shared_ptr<const Instance>> out;
  std::shared_lock lock(mu_);
  out.reserve(instance_count_);
  for (const auto& [key, state] : services_) {
    for (const auto& [id, record] : state.instances) out.push_back(record.instance);
  }
  return out;
}

void Catalog::SetChangeListener(ChangeListener listener) {
  std::lock_guard lock(listener_mu_);
  listener_ = std::move(listener);
}

WatchHub::Wakeups Catalog::PublishChanges(std::vector<Event> events, bool reset) {
  std::lock_guard lock(listener_mu_);
  // The hub takes the events; a listener gets a copy (shared instances).
  std::vector<Event> copy;
  if (listener_) copy = events;
  WatchHub::Wakeups wakeups;
  if (reset) {
    hub_.NotifyAll();
  } else {
    wakeups = hub_.Append(std::move(events));
  }
  if (listener_) listener_(copy, reset);
  return wakeups;
}

size_t Catalog::instance_count() const {
  std::shared_lock lock(mu_);
  return instance_count_;
}

size_t Catalog::instance_bytes() const {
  std::shared_lock lock(mu_);
  return instance_bytes_;
}

}  // namespace muster
