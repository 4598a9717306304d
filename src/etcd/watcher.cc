#include "etcd/watcher.h"

#include <algorithm>
#include <utility>

#include "core/strings.h"

namespace muster::etcd {
namespace {

constexpr std::chrono::milliseconds kMinBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{2000};

}  // namespace

Watcher::Watcher(Client& client, std::string key, std::string range_end, WatchHandler handler)
    : client_(client),
      key_(std::move(key)),
      range_end_(std::move(range_end)),
      handler_(std::move(handler)) {
  thread_ = std::thread([this] { Run(); });
}

Watcher::~Watcher() {
  Stop();
  if (thread_.joinable()) thread_.join();
}

void Watcher::Stop() {
  stopped_.store(true);
  MutexLock lock(mu_);
  if (active_ != nullptr) active_->TryCancel();
  wake_.NotifyAll();
}

bool Watcher::Pause(std::chrono::milliseconds delay) {
  const auto deadline = std::chrono::steady_clock::now() + delay;
  MutexLock lock(mu_);
  while (!stopped_.load() && wake_.WaitUntil(mu_, deadline)) {
  }
  return !stopped_.load();
}

void Watcher::Run() {
  bool need_resync = true;
  auto backoff = kMinBackoff;
  auto fail = [&](const absl::Status& status) {
    if (!in_outage_ && !stopped_.load()) handler_.on_error(status);
    in_outage_ = true;
  };
  while (!stopped_.load()) {
    if (need_resync) {
      absl::StatusOr<int64_t> revision = handler_.resync();
      if (stopped_.load()) return;
      if (!revision.ok()) {
        fail(revision.status());
        if (!Pause(backoff)) return;
        backoff = std::min(backoff * 2, kMaxBackoff);
        continue;
      }
      // A resync hands over a whole state: the owner is following again.
      in_outage_ = false;
      need_resync = false;
      next_revision_ = *revision + 1;
    }
    bool compacted = false;
    bool delivered_any = false;
    grpc::Status status = Follow(compacted, delivered_any);
    if (stopped_.load()) return;
    if (delivered_any) backoff = kMinBackoff;
    if (compacted) {
      need_resync = true;
      continue;
    }
    fail(FromGrpc(status.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "the stream ended")
                              : status,
                  "Watch"));
    if (!Pause(backoff)) return;
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
}

grpc::Status Watcher::Follow(bool& compacted, bool& delivered_any) {
  grpc::ClientContext context;
  Client::StreamTarget target = client_.CurrentStream(context);
  {
    MutexLock lock(mu_);
    if (stopped_.load()) return grpc::Status::CANCELLED;
    active_ = &context;
  }
  auto stream = target.watch->Watch(&context);

  etcdserverpb::WatchRequest request;
  etcdserverpb::WatchCreateRequest* create = request.mutable_create_request();
  create->set_key(key_);
  create->set_range_end(range_end_);
  create->set_start_revision(next_revision_);
  create->set_prev_kv(true);
  create->set_progress_notify(true);
  bool ok = stream->Write(request);

  etcdserverpb::WatchResponse response;
  std::vector<mvccpb::Event> events;
  bool canceled = false;  // etcd ended this watch (not the stream)
  while (ok && stream->Read(&response)) {
    if (response.compact_revision() > 0) {
      compacted = true;
      break;
    }
    if (response.canceled()) {
      canceled = true;
      break;
    }
    delivered_any = true;
    if (response.created()) {
      // Following again after an outage: say so (an empty batch).
      if (in_outage_ && !stopped_.load()) handler_.on_events({}, next_revision_ - 1);
      in_outage_ = false;
      continue;
    }
    if (response.events().empty()) {
      // A progress notification: every later event is newer than its revision.
      next_revision_ = std::max(next_revision_, response.header().revision() + 1);
      continue;
    }
    events.assign(response.events().begin(), response.events().end());
    if (stopped_.load()) break;
    const int64_t last = events.back().kv().mod_revision();
    handler_.on_events(events, last);
    next_revision_ = last + 1;
  }
  context.TryCancel();
  grpc::Status status = stream->Finish();
  {
    MutexLock lock(mu_);
    active_ = nullptr;
  }
  if (!compacted && !stopped_.load()) {
    // Our TryCancel makes Finish say CANCELLED; what ended the watch was etcd.
    if (canceled) {
      status = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                            StrCat("etcd canceled the watch: ", response.cancel_reason()));
    } else if (status.ok() || status.error_code() == grpc::StatusCode::CANCELLED) {
      status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "the stream ended");
    }
    client_.StreamFailed(target.endpoint, status);
  }
  return status;
}

}  // namespace muster::etcd
