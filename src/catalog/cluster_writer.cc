#include "catalog/cluster_writer.h"

#include <algorithm>
#include <utility>

#include <spdlog/spdlog.h>

#include "core/checks.h"
#include "core/footprint.h"
#include "core/strings.h"

namespace muster {

// Hands the store's feed to the writer.
class ClusterWriter::Feed final : public ClusterStore::Feed {
 public:
  explicit Feed(ClusterWriter& writer) : writer_(writer) {}
  void Reset(std::vector<Instance> instances, uint64_t revision) override {
    writer_.ResetView(std::move(instances), revision);
  }
  void Apply(std::vector<Event> events, uint64_t revision) override {
    writer_.ApplyEvents(std::move(events), revision);
  }
  void Interrupted(const absl::Status& status) override { writer_.Interrupted(status); }

 private:
  ClusterWriter& writer_;
};

ClusterWriter::ClusterWriter(Limits limits, ClusterStore* store)
    : limits_(std::move(limits)), store_(store) {}

ClusterWriter::~ClusterWriter() { Stop(); }

absl::Status ClusterWriter::Start(CatalogView& view) {
  view_ = &view;
  feed_ = std::make_unique<Feed>(*this);
  waiter_thread_ = std::thread([this] { WaiterLoop(); });
  absl::Status started = store_->Start(feed_.get());
  if (!started.ok()) {
    {
      MutexLock lock(waiters_mu_);
      waiters_stopping_ = true;
    }
    waiters_cv_.NotifyAll();
    waiter_thread_.join();
    return started;
  }
  MutexLock lock(mu_);
  started_ = true;
  return absl::OkStatus();
}

void ClusterWriter::Stop() {
  {
    MutexLock lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  // Writes in progress answer (and wait for their revision) first.
  store_->Stop();
  {
    MutexLock lock(waiters_mu_);
    waiters_stopping_ = true;
  }
  waiters_cv_.NotifyAll();
  if (waiter_thread_.joinable()) waiter_thread_.join();
}

template <typename Done>
bool ClusterWriter::Accepting(Done& done) {
  {
    MutexLock lock(mu_);
    if (started_ && !stopping_) return true;
  }
  std::move(done)(absl::UnavailableError("the registry is shutting down"));
  return false;
}

void ClusterWriter::Heartbeat(InstanceKey key, HeartbeatCallback done) {
  if (!Accepting(done)) return;
  store_->Heartbeat(std::move(key), std::move(done));
}

void ClusterWriter::Register(Instance instance, WriteCallback done) {
  if (!Accepting(done)) return;
  {
    // The limits hold per node's view: nodes registering into one service
    // at the same moment may together pass them by a few (docs/cluster.md).
    CatalogView& view = *view_;
    ReaderLock lock(view.mu());
    const CatalogView::Usage usage = view.UsageLocked(instance.ns, instance.service);
    const CatalogView::Record* current = view.FindLocked(KeyOf(instance));
    absl::Status fits = current != nullptr
                            ? absl::OkStatus()
                            : CheckInstanceLimit(limits_, instance.service,
                                                 static_cast<int64_t>(usage.instances));
    if (fits.ok()) {
      const int64_t bytes = static_cast<int64_t>(ApproximateBytes(instance)) -
                            (current ? static_cast<int64_t>(current->bytes) : 0);
      fits = CheckBytesLimit(limits_, instance.service, bytes, static_cast<int64_t>(usage.bytes),
                             static_cast<int64_t>(view.instance_bytes_locked()));
    }
    if (!fits.ok()) {
      lock.Unlock();
      std::move(done)(std::move(fits));
      return;
    }
  }
  store_->Register(std::move(instance), AnswerWhenApplied(std::move(done)));
}

void ClusterWriter::Deregister(InstanceKey key, WriteCallback done) {
  if (!Accepting(done)) return;
  store_->Deregister(std::move(key), AnswerWhenApplied(std::move(done)));
}

void ClusterWriter::SetCheckState(InstanceKey key, Check check, WriteCallback done) {
  if (!Accepting(done)) return;
  store_->SetCheckState(std::move(key), std::move(check), AnswerWhenApplied(std::move(done)));
}

absl::Status ClusterWriter::StandForLeadership(std::string candidate,
                                                LeadershipListener on_change) {
  return store_->Campaign(std::move(candidate), std::move(on_change));
}

WritePathStatus ClusterWriter::status() const {
  WritePathStatus status;
  status.store = "etcd";
  {
    MutexLock lock(waiters_mu_);
    status.following = following_;
  }
  const ClusterStore::Role role = store_->role();
  if (role.campaigning) {
    status.election = WritePathStatus::Election{role.leading, role.leader, role.term};
  }
  return status;
}

ClusterStore::WriteDone ClusterWriter::AnswerWhenApplied(WriteCallback done) {
  return [this, done = std::move(done)](absl::StatusOr<ClusterStore::Written> written) mutable {
    if (!written.ok()) {
      std::move(done)(std::move(written).status());
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

void ClusterWriter::WhenApplied(uint64_t revision, absl::AnyInvocable<void() &&> then) {
  {
    MutexLock lock(waiters_mu_);
    if (applied_ < revision && !waiters_stopping_) {
      waiters_.push_back(Waiter{revision, std::chrono::steady_clock::now(), std::move(then)});
      return;
    }
  }
  std::move(then)();
}

void ClusterWriter::Applied(uint64_t revision) {
  std::vector<Waiter> ready;
  {
    MutexLock lock(waiters_mu_);
    applied_ = std::max(applied_, revision);
    following_ = true;
    const uint64_t applied = applied_;
    auto split = std::partition(waiters_.begin(), waiters_.end(),
                                [&](const Waiter& w) { return w.revision > applied; });
    ready.assign(std::make_move_iterator(split), std::make_move_iterator(waiters_.end()));
    waiters_.erase(split, waiters_.end());
  }
  for (Waiter& w : ready) std::move(w.then)();
}

void ClusterWriter::Interrupted(const absl::Status& status) {
  {
    MutexLock lock(waiters_mu_);
    if (!following_) return;
    following_ = false;
  }
  spdlog::warn("cluster store feed interrupted, serving the last known state: {}",
               MessageOf(status));
}

void ClusterWriter::WaiterLoop() {
  MutexLock lock(waiters_mu_);
  while (true) {
    waiters_cv_.WaitFor(waiters_mu_, std::chrono::milliseconds(100));
    const auto now = std::chrono::steady_clock::now();
    const bool stopping = waiters_stopping_;
    std::vector<Waiter> due;
    auto split = std::partition(waiters_.begin(), waiters_.end(), [&](const Waiter& w) {
      return !stopping && now - w.since < kApplyWait;
    });
    due.assign(std::make_move_iterator(split), std::make_move_iterator(waiters_.end()));
    waiters_.erase(split, waiters_.end());
    lock.Unlock();
    if (!due.empty() && !stopping) {
      spdlog::warn("{} write(s) answered before this node's view applied them (feed lagging)",
                   due.size());
    }
    for (Waiter& w : due) std::move(w.then)();
    if (stopping) return;
    lock.Lock();
  }
}

void ClusterWriter::ResetView(std::vector<Instance> instances, uint64_t revision) {
  CatalogView& view = *view_;
  {
    WriterLock lock(view.mu());
    view.ClearLocked(revision);
    for (Instance& in : instances) view.PutLocked(std::make_shared<const Instance>(std::move(in)), revision);
    view.AdvanceRevisionLocked(revision);
    // Watchers reading from before `revision` are told to list again.
    view.hub().Reset(revision);
  }
  view.Publish({}, true);
  Applied(revision);
}

void ClusterWriter::ApplyEvents(std::vector<Event> events, uint64_t revision) {
  CatalogView& view = *view_;
  {
    WriterLock lock(view.mu());
    for (Event& event : events) {
      const Instance& in = *event.instance;
      // etcd says "updated"; a change of check states alone is a health event.
      if (event.type == ChangeType::kUpdated) {
        const CatalogView::Record* before = view.FindLocked(KeyOf(in));
        if (before != nullptr && OnlyCheckStatesDiffer(*before->instance, in, &event.check)) {
          event.type = ChangeType::kHealth;
        }
      }
      if (event.type == ChangeType::kDeregistered || event.type == ChangeType::kExpired) {
        view.EraseLocked(KeyOf(in), event.revision);
      } else {
        view.PutLocked(event.instance, event.revision);
      }
    }
    view.AdvanceRevisionLocked(revision);
  }
  // As in the embedded committer: the writers waiting for this revision are
  // answered before the watchers are woken.
  WatchHub::Wakeups wakeups = view.Publish(std::move(events), false);
  Applied(revision);
  view.hub().Wake(std::move(wakeups));
}

}  // namespace muster
