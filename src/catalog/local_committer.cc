#include "catalog/local_committer.h"

#include <algorithm>
#include <utility>

#include "core/checks.h"
#include "core/registration.h"
#include "core/footprint.h"
#include "core/strings.h"

namespace muster {
namespace {

absl::Status ShuttingDown() { return absl::UnavailableError("the registry is shutting down"); }

}  // namespace

LocalCommitter::LocalCommitter(LocalCommitterOptions options, Journal* journal)
    : options_(std::move(options)),
      journal_(journal),
      leases_(options_.clock),
      preservation_(options_.self_preservation, options_.clock) {}

LocalCommitter::~LocalCommitter() { Stop(); }

absl::Status LocalCommitter::Start(CatalogView& view) {
  view_ = &view;
  uint64_t revision = 0;
  if (journal_ != nullptr) {
    auto snapshot = journal_->Load();
    if (!snapshot.ok()) return snapshot.status();
    WriterLock lock(view.mu());
    revision = snapshot->revision;
    for (Instance& in : snapshot->instances) {
      revision = std::max(revision, in.modify_revision);
      const LeaseId lease =
          in.ttl_seconds > 0 ? leases_.Grant(KeyOf(in), std::chrono::seconds(in.ttl_seconds)) : 0;
      const uint64_t changed = in.modify_revision;
      view.PutLocked(std::make_shared<const Instance>(std::move(in)), changed).lease = lease;
    }
    view.AdvanceRevisionLocked(revision);
  }
  view.hub().Reset(revision);
  MutexLock lock(queue_mu_);
  started_ = true;
  committer_ = std::thread([this] { CommitterLoop(); });
  return absl::OkStatus();
}

void LocalCommitter::Stop() {
  {
    MutexLock lock(queue_mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  queue_cv_.NotifyAll();
  if (committer_.joinable()) committer_.join();
}

void LocalCommitter::SweepNow() {
  MutexLock lock(queue_mu_);
  const uint64_t ticket = ++sweeps_asked_;
  queue_cv_.NotifyAll();
  while (sweeps_done_ < ticket && !stopped_ && started_) sweep_cv_.Wait(queue_mu_);
}

void LocalCommitter::Register(Instance instance, WriteCallback done) {
  Op op{Op::kRegister, KeyOf(instance), nullptr, nullptr, 0, std::move(done)};
  op.instance = std::make_unique<Instance>(std::move(instance));
  Enqueue(std::move(op));
}

void LocalCommitter::Deregister(InstanceKey key, WriteCallback done) {
  Enqueue(Op{Op::kDeregister, std::move(key), nullptr, nullptr, 0, std::move(done)});
}

void LocalCommitter::SetCheckState(InstanceKey key, Check check, WriteCallback done) {
  Enqueue(Op{Op::kCheck, std::move(key), nullptr, std::make_shared<const Check>(std::move(check)),
             0, std::move(done)});
}

void LocalCommitter::Enqueue(Op op) {
  {
    MutexLock lock(queue_mu_);
    if (started_ && !stopping_) {
      queue_.push_back(std::move(op));
      queue_cv_.NotifyOne();
      return;
    }
  }
  std::move(op.done)(ShuttingDown());
}

std::optional<absl::StatusOr<uint32_t>> LocalCommitter::TryHeartbeat(const InstanceKey& key) {
  if (view_ == nullptr) return absl::StatusOr<uint32_t>(ShuttingDown());
  ReaderLock lock(view_->mu());
  const CatalogView::Record* record = view_->FindLocked(key);
  if (record == nullptr) return absl::StatusOr<uint32_t>(NotRegisteredError(key));
  if (record->lease != 0 && !leases_.Renew(record->lease)) {
    return absl::StatusOr<uint32_t>(absl::NotFoundError(
        StrCat("the lease of instance ", key.id, " of service ", key.service, " has lapsed")));
  }
  return absl::StatusOr<uint32_t>(record->instance->ttl_seconds);
}

void LocalCommitter::Heartbeat(InstanceKey key, HeartbeatCallback done) {
  std::move(done)(*TryHeartbeat(key));
}

absl::Status LocalCommitter::StandForLeadership(std::string, LeadershipListener on_change) {
  if (on_change) on_change(true);
  return absl::OkStatus();
}

WritePathStatus LocalCommitter::status() const {
  WritePathStatus status;
  status.store = "embedded";
  status.self_preserving = preservation_.active();
  status.store_write_failing = store_write_failing_.load(std::memory_order_relaxed);
  return status;
}

void LocalCommitter::CommitterLoop() {
  for (;;) {
    std::vector<Op> batch;
    uint64_t sweep_ticket = 0;
    {
      MutexLock lock(queue_mu_);
      const auto sweep_at = std::chrono::steady_clock::now() + options_.sweep_interval;
      while (queue_.empty() && !stopping_ && sweeps_asked_ <= sweeps_done_ &&
             queue_cv_.WaitUntil(queue_mu_, sweep_at)) {
      }
      if (stopping_ && queue_.empty()) break;
      sweep_ticket = sweeps_asked_;
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
    {
      MutexLock lock(queue_mu_);
      sweeps_done_ = std::max(sweeps_done_, sweep_ticket);
    }
    sweep_cv_.NotifyAll();
  }
  {
    MutexLock lock(queue_mu_);
    stopped_ = true;
  }
  sweep_cv_.NotifyAll();
}

void LocalCommitter::RunBatch(std::vector<Op> batch) {
  CatalogView& view = *view_;
  std::vector<Outcome> outcomes(batch.size());
  std::vector<Journal::Mutation> mutations;
  uint64_t revision;
  {
    ReaderLock lock(view.mu());
    revision = view.revision_locked();
    // Effects of earlier ops of this batch: the instance, or null when deleted.
    absl::flat_hash_map<InstanceKey, std::shared_ptr<const Instance>> overlay;
    // New instances and bytes per service in this batch, for the limits.
    struct Added {
      int64_t instances = 0;
      int64_t bytes = 0;
    };
    absl::flat_hash_map<std::pair<std::string, std::string>, Added> added;
    int64_t added_total_bytes = 0;
    auto added_to = [&](const InstanceKey& key) -> Added& { return added[{key.ns, key.service}]; };
    auto add_bytes = [&](const InstanceKey& key, int64_t bytes) {
      added_to(key).bytes += bytes;
      added_total_bytes += bytes;
    };
    auto current = [&](const InstanceKey& key) -> std::shared_ptr<const Instance> {
      if (auto it = overlay.find(key); it != overlay.end()) return it->second;
      view.mu().AssertReaderHeld();  // the lambda runs under the lock above
      const CatalogView::Record* r = view.FindLocked(key);
      return r ? r->instance : nullptr;
    };
    auto remove = [&](Op& op, Outcome& out, ChangeType type, std::shared_ptr<const Instance> last) {
      out.changes = true;
      out.type = type;
      out.instance = std::move(last);
      out.revision = ++revision;
      add_bytes(op.key, -static_cast<int64_t>(ApproximateBytes(*out.instance)));
      overlay[op.key] = nullptr;
      --added_to(op.key).instances;
      mutations.push_back({op.key, nullptr});
    };
    for (size_t i = 0; i < batch.size(); ++i) {
      Op& op = batch[i];
      Outcome& out = outcomes[i];
      std::shared_ptr<const Instance> cur = current(op.key);
      switch (op.kind) {
        case Op::kRegister: {
          // The registration moves into the decision: no copy, also none
          // for a renew-only one.
          Registration decided = DecideRegistration(cur.get(), std::move(*op.instance));
          if (decided.kind == RegistrationKind::kRenewOnly) {
            out.renew_only = true;
            out.instance = cur;
            out.revision = revision;
            break;
          }
          const CatalogView::Usage usage = view.UsageLocked(op.key.ns, op.key.service);
          Added& in_batch = added_to(op.key);
          if (!cur) {
            out.status = CheckInstanceLimit(options_.limits, op.key.service,
                                            static_cast<int64_t>(usage.instances) + in_batch.instances);
            if (!out.status.ok()) break;
          }
          // The decided instance's bytes, as the catalog will hold it.
          const int64_t bytes = static_cast<int64_t>(ApproximateBytes(*decided.stored)) -
                                (cur ? static_cast<int64_t>(ApproximateBytes(*cur)) : 0);
          out.status = CheckBytesLimit(
              options_.limits, op.key.service, bytes,
              static_cast<int64_t>(usage.bytes) + in_batch.bytes,
              static_cast<int64_t>(view.instance_bytes_locked()) + added_total_bytes);
          if (!out.status.ok()) break;
          if (!cur) ++in_batch.instances;
          add_bytes(op.key, bytes);
          out.revision = ++revision;
          decided.Stamp(out.revision);
          auto stored = std::make_shared<const Instance>(*std::move(decided.stored));
          out.changes = true;
          out.type = decided.kind == RegistrationKind::kUpdate ? ChangeType::kUpdated
                                                              : ChangeType::kRegistered;
          out.instance = stored;
          overlay[op.key] = stored;
          mutations.push_back({op.key, std::move(stored)});
          break;
        }
        case Op::kDeregister:
          if (!cur) {
            out.status = NotRegisteredError(op.key);
            break;
          }
          remove(op, out, ChangeType::kDeregistered, std::move(cur));
          break;
        case Op::kCheck: {
          if (!cur) {
            out.status = NotRegisteredError(op.key);
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
          const CatalogView::Record* r = view.FindLocked(op.key);
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
    WriterLock lock(view_->mu());
    for (size_t i = 0; i < batch.size(); ++i) {
      const Outcome& out = outcomes[i];
      if (!out.status.ok() || (!out.changes && !out.renew_only)) continue;
      ApplyLocked(batch[i], out);
      if (out.changes) events.push_back(Event{out.revision, out.type, out.instance, out.check});
    }
    view_->AdvanceRevisionLocked(revision);
  }
  // The events are readable from here on; the writers are answered before
  // the watchers are woken, so that a write to a service with thousands of
  // watchers is not answered behind thousands of wake-ups.
  WatchHub::Wakeups wakeups = view.Publish(std::move(events), false);

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
  view.hub().Wake(std::move(wakeups));
}

void LocalCommitter::ApplyLocked(const Op& op, const Outcome& out) {
  switch (op.kind) {
    case Op::kCheck:
      // The lease stays as it is.
      if (out.changes && view_->FindLocked(op.key) != nullptr) view_->PutLocked(out.instance, out.revision);
      return;
    case Op::kRegister: {
      CatalogView::Record& record = view_->PutLocked(out.instance, out.changes ? out.revision : 0);
      record.lease = leases_.Keep(record.lease, op.key, std::chrono::seconds(out.instance->ttl_seconds));
      return;
    }
    case Op::kDeregister:
    case Op::kExpire:
      if (auto erased = view_->EraseLocked(op.key, out.revision); erased && erased->lease != 0) {
        leases_.Revoke(erased->lease);
      }
      return;
  }
}

}  // namespace muster
