#include "store/etcd_store.h"

#include <spdlog/spdlog.h>

#include <utility>

#include "core/strings.h"
#include "etcd/layout.h"

namespace muster {
namespace {

absl::Status ShuttingDown() { return absl::UnavailableError("the registry is shutting down"); }

}  // namespace

absl::StatusOr<std::unique_ptr<EtcdStore>> EtcdStore::Connect(EtcdStoreOptions options) {
  if (options.workers == 0) return absl::InvalidArgumentError("an etcd store needs workers");
  absl::StatusOr<std::unique_ptr<etcd::Client>> client = etcd::Client::Connect(options.client);
  if (!client.ok()) return client.status();
  return std::unique_ptr<EtcdStore>(new EtcdStore(std::move(options), *std::move(client)));
}

EtcdStore::EtcdStore(EtcdStoreOptions options, std::unique_ptr<etcd::Client> client)
    : options_(std::move(options)),
      client_(std::move(client)),
      store_(*client_, etcd::Layout(options_.prefix)) {
  for (size_t i = 0; i < options_.workers; ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
  }
}

EtcdStore::~EtcdStore() { Stop(); }

void EtcdStore::Submit(absl::AnyInvocable<void() &&> work, absl::AnyInvocable<void() &&> refuse) {
  {
    MutexLock lock(mu_);
    if (!stopping_) {
      work_.push_back(std::move(work));
      work_cv_.NotifyOne();
      return;
    }
  }
  std::move(refuse)();
}

void EtcdStore::WorkerLoop() {
  MutexLock lock(mu_);
  while (true) {
    while (!stopping_ && work_.empty()) work_cv_.Wait(mu_);
    if (work_.empty()) return;  // stopping, and everything queued is done
    absl::AnyInvocable<void() &&> work = std::move(work_.front());
    work_.pop_front();
    lock.Unlock();
    std::move(work)();
    lock.Lock();
  }
}

void EtcdStore::SubmitWrite(
    absl::AnyInvocable<absl::StatusOr<etcd::InstanceStore::Written>() &&> write, WriteDone done) {
  auto shared = std::make_shared<WriteDone>(std::move(done));
  Submit(
      [write = std::move(write), shared]() mutable {
        absl::StatusOr<etcd::InstanceStore::Written> written = std::move(write)();
        if (!written.ok()) {
          std::move (*shared)(std::move(written).status());
          return;
        }
        Written result;
        result.instance = std::make_shared<const Instance>(std::move(written->instance));
        result.created = written->created;
        result.changed = written->changed;
        result.revision = written->revision;
        std::move (*shared)(std::move(result));
      },
      [shared] { std::move (*shared)(ShuttingDown()); });
}

void EtcdStore::Register(Instance instance, WriteDone done) {
  SubmitWrite(
      [this, instance = std::move(instance)] {
        return store_.Register(instance, etcd::DeadlineIn(options_.call_timeout));
      },
      std::move(done));
}

void EtcdStore::Deregister(InstanceKey key, WriteDone done) {
  SubmitWrite(
      [this, key = std::move(key)]() -> absl::StatusOr<etcd::InstanceStore::Written> {
        auto written = store_.Deregister(key, etcd::DeadlineIn(options_.call_timeout));
        if (written.ok()) written->changed = true;
        return written;
      },
      std::move(done));
}

void EtcdStore::SetCheckState(InstanceKey key, Check check, WriteDone done) {
  SubmitWrite(
      [this, key = std::move(key),
       check = std::move(check)]() -> absl::StatusOr<etcd::InstanceStore::Written> {
        etcd::InstanceStore::Fence fence;
        {
          MutexLock lock(election_mu_);
          if (election_ == nullptr || !election_->leading()) {
            return absl::FailedPreconditionError("this node does not lead the cluster");
          }
          fence.key = election_key_;
          fence.term = election_->term();
        }
        return store_.SetCheckState(key, check, fence, etcd::DeadlineIn(options_.call_timeout));
      },
      std::move(done));
}

void EtcdStore::Heartbeat(InstanceKey key, HeartbeatDone done) {
  auto shared = std::make_shared<HeartbeatDone>(std::move(done));
  Submit(
      [this, key = std::move(key), shared]() mutable {
        absl::StatusOr<int64_t> ttl = store_.Heartbeat(key, etcd::DeadlineIn(options_.call_timeout));
        if (!ttl.ok()) {
          std::move (*shared)(std::move(ttl).status());
          return;
        }
        std::move (*shared)(static_cast<uint32_t>(*ttl));
      },
      [shared] { std::move (*shared)(ShuttingDown()); });
}

absl::StatusOr<int64_t> EtcdStore::Resync(Feed* feed) {
  absl::StatusOr<etcd::InstanceStore::Listed> listed =
      store_.List(store_.layout().ServicesPrefix(), etcd::DeadlineIn(options_.call_timeout));
  if (!listed.ok()) return listed.status();
  spdlog::info("etcd store: {} instances at revision {}", listed->instances.size(),
               listed->revision);
  feed->Reset(std::move(listed->instances), listed->revision);
  {
    MutexLock lock(start_mu_);
    synced_ = true;
  }
  start_cv_.NotifyAll();
  return static_cast<int64_t>(listed->revision);
}

void EtcdStore::Deliver(Feed* feed, const std::vector<mvccpb::Event>& events, int64_t revision) {
  std::vector<Event> out;
  for (Change& change : etcd::ChangesFromEvents(store_.layout(), events)) {
    if (change.type == ChangeType::kExpired || change.type == ChangeType::kDeregistered) {
      store_.Forget(KeyOf(change.instance));
    }
    out.push_back(Event{change.revision, change.type,
                        std::make_shared<const Instance>(std::move(change.instance)), {}});
  }
  feed->Apply(std::move(out), static_cast<uint64_t>(revision));
}

absl::Status EtcdStore::Start(Feed* feed) {
  etcd::WatchHandler handler;
  handler.resync = [this, feed] { return Resync(feed); };
  handler.on_events = [this, feed](const std::vector<mvccpb::Event>& events, int64_t revision) {
    Deliver(feed, events, revision);
  };
  handler.on_error = [this, feed](const absl::Status& status) {
    {
      MutexLock lock(start_mu_);
      last_error_ = status;
    }
    start_cv_.NotifyAll();
    feed->Interrupted(status);
  };
  const std::string prefix = store_.layout().ServicesPrefix();
  watcher_ = std::make_unique<etcd::Watcher>(*client_, prefix, etcd::PrefixEnd(prefix),
                                             std::move(handler));
  MutexLock lock(start_mu_);
  const auto wait = options_.client.dial_timeout + options_.call_timeout;
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (!synced_) {
    if (!start_cv_.WaitUntil(start_mu_, deadline)) break;  // the time is up
  }
  if (synced_) return absl::OkStatus();
  absl::Status error = last_error_;
  lock.Unlock();
  watcher_.reset();
  return absl::UnavailableError(StrCat("cannot read the catalog from etcd within ",
                                       std::chrono::duration_cast<std::chrono::milliseconds>(wait).count(),
                                       " ms", error.ok() ? "" : ": ", error.message()));
}

absl::Status EtcdStore::Campaign(std::string candidate,
                                 std::function<void(bool leading)> on_change) {
  MutexLock lock(election_mu_);
  if (election_ != nullptr) return absl::FailedPreconditionError("already campaigning");
  if (election_client_ == nullptr) {
    absl::StatusOr<std::unique_ptr<etcd::Client>> client = etcd::Client::Connect(options_.client);
    if (!client.ok()) return client.status();
    election_client_ = *std::move(client);
  }
  etcd::ElectionOptions options;
  options.key = election_key_;
  options.candidate = std::move(candidate);
  options.ttl = options_.election_ttl;
  auto election = etcd::Election::Start(
      *election_client_, options, [on_change = std::move(on_change)](bool leading) {
        spdlog::info("this node {} the cluster", leading ? "now leads" : "no longer leads");
        if (on_change) on_change(leading);
      });
  if (!election.ok()) return election.status();
  election_ = *std::move(election);
  return absl::OkStatus();
}

ClusterStore::Role EtcdStore::role() const {
  MutexLock lock(election_mu_);
  Role role;
  if (election_ == nullptr) return role;
  role.campaigning = true;
  role.leading = election_->leading();
  role.leader = election_->leader();
  role.term = role.leading ? election_->term() : 0;
  return role;
}

void EtcdStore::Stop() {
  {
    // Resign first: another node takes over at once.
    std::unique_ptr<etcd::Election> election;
    {
      MutexLock lock(election_mu_);
      election = std::move(election_);
    }
  }
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  work_cv_.NotifyAll();
  for (std::thread& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
  watcher_.reset();
}

}  // namespace muster
