#include "etcd/election.h"

#include <algorithm>
#include <utility>

#include "core/strings.h"

namespace muster::etcd {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr milliseconds kMinBackoff{100};
constexpr milliseconds kMaxBackoff{2000};
// How soon a failed renewal is tried again (until the belief runs out).
constexpr milliseconds kRenewRetry{100};

// How long before etcd could expire the lease this node stops believing it
// leads: covers scheduling delays and the leader-only step that checked
// leading() just before.
std::chrono::steady_clock::duration Margin(std::chrono::steady_clock::duration ttl) {
  return std::clamp<std::chrono::steady_clock::duration>(ttl / 4, milliseconds(500),
                                                         seconds(2));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Election>> Election::Start(
    Client& client, ElectionOptions options, std::function<void(bool leading)> on_change) {
  if (options.key.empty()) return absl::InvalidArgumentError("election: empty key");
  if (options.candidate.empty()) return absl::InvalidArgumentError("election: empty candidate");
  if (options.ttl < seconds(1)) {
    return absl::InvalidArgumentError(
        StrCat("election: ttl must be at least 1 s, not ", options.ttl.count(), " s"));
  }
  std::unique_ptr<Election> election(
      new Election(client, std::move(options), std::move(on_change)));
  Election* self = election.get();

  WatchHandler handler;
  handler.resync = [self]() -> absl::StatusOr<int64_t> {
    etcdserverpb::RangeRequest range;
    range.set_key(self->options_.key);
    absl::StatusOr<etcdserverpb::RangeResponse> answer =
        self->client_.Range(range, self->CallDeadline(Clock::now() + self->call_timeout_));
    if (!answer.ok()) return answer.status();
    const int64_t revision = answer->header().revision();
    MutexLock lock(self->mu_);
    if (!self->suspended_) self->Observe(revision, answer->kvs().empty() ? nullptr : &answer->kvs(0));
    return revision;
  };
  handler.on_events = [self](const std::vector<mvccpb::Event>& events, int64_t) {
    MutexLock lock(self->mu_);
    if (self->suspended_) return;
    for (const mvccpb::Event& event : events) {
      self->Observe(event.kv().mod_revision(),
                    event.type() == mvccpb::Event::PUT ? &event.kv() : nullptr);
    }
  };
  // A broken watch resumes by itself; meanwhile followers still campaign
  // once per ttl, and the leader relies on its renewals.
  handler.on_error = [](const absl::Status&) {};
  const std::string key = self->options_.key;
  self->watcher_ = std::make_unique<Watcher>(client, key, "", std::move(handler));
  self->thread_ = std::thread([self] { self->Run(); });
  return election;
}

Election::Election(Client& client, ElectionOptions options, std::function<void(bool)> on_change)
    : client_(client),
      options_(std::move(options)),
      on_change_(std::move(on_change)),
      call_timeout_(std::clamp<Clock::duration>(options_.ttl / 2, seconds(1), seconds(3))),
      grant_backoff_(kMinBackoff),
      campaign_backoff_(kMinBackoff) {}

Election::~Election() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
    wake_.NotifyAll();
  }
  if (thread_.joinable()) thread_.join();
  watcher_.reset();
}

bool Election::LeadingLocked() const { return leading_ && Clock::now() < valid_until_; }

bool Election::leading() const {
  MutexLock lock(mu_);
  return LeadingLocked();
}

std::string Election::leader() const {
  MutexLock lock(mu_);
  return observed_present_ ? observed_value_ : std::string();
}

int64_t Election::term() const {
  MutexLock lock(mu_);
  return LeadingLocked() ? term_ : 0;
}

void Election::Resign() {
  MutexLock lock(mu_);
  resign_requested_ = true;
  wake_.NotifyAll();
  if (std::this_thread::get_id() == thread_id_) return;  // from on_change
  while (!resigned_ && !thread_done_) wake_.Wait(mu_);
}

void Election::SuspendForTest() {
  MutexLock lock(mu_);
  suspended_ = true;
  wake_.NotifyAll();
}

void Election::ResumeForTest() {
  MutexLock lock(mu_);
  suspended_ = false;
  wake_.NotifyAll();
}

Deadline Election::CallDeadline(Clock::time_point limit) const {
  const auto left = std::max<Clock::duration>(limit - Clock::now(), milliseconds(1));
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(left);
}

void Election::Observe(int64_t revision, const mvccpb::KeyValue* kv) {
  if (revision < observed_revision_) return;  // older than what is known
  observed_revision_ = revision;
  observed_present_ = kv != nullptr;
  observed_value_ = kv != nullptr ? kv->value() : std::string();
  observed_create_revision_ = kv != nullptr ? kv->create_revision() : 0;
  wake_.NotifyAll();
}

bool Election::KeyLost() const {
  // An observation from before the win (older revision) says nothing.
  return leading_ && observed_revision_ >= term_ &&
         !(observed_present_ && observed_create_revision_ == term_);
}

void Election::Run() {
  MutexLock lock(mu_);
  thread_id_ = std::this_thread::get_id();
  while (!stopping_) {
    const Clock::time_point now = Clock::now();
    if (lease_ != 0 && now >= lease_valid_until_) {
      // No renewal for ttl - margin: etcd may expire the lease soon and elect
      // another. Stop leading now; this tenure is over.
      StepDown();
      DropLease(/*revoke=*/!suspended_);
      continue;
    }
    if (KeyLost()) {  // deleted or replaced behind our back; the lease is fine
      StepDown();
      continue;
    }
    if (resign_requested_ && !resigned_) {
      StepDown();
      DropLease(/*revoke=*/!suspended_);
      resigned_ = true;
      wake_.NotifyAll();
      continue;
    }
    if (resigned_ || suspended_) {
      // No etcd calls; a lease still held runs out locally.
      if (lease_ != 0) {
        wake_.WaitUntil(mu_, lease_valid_until_);
      } else {
        wake_.Wait(mu_);
      }
      continue;
    }
    if (lease_ == 0) {
      if (now < grant_retry_at_) {
        wake_.WaitUntil(mu_, grant_retry_at_);
      } else {
        Grant();
      }
      continue;
    }
    if (now >= next_renewal_) {
      Renew();
      continue;
    }
    const bool may_campaign = !leading_ && now >= campaign_retry_at_;
    if (may_campaign && (!observed_present_ || now >= next_campaign_)) {
      Campaign();
      continue;
    }
    Clock::time_point until = std::min(next_renewal_, lease_valid_until_);
    if (!leading_) {
      until = std::min(until, observed_present_ ? std::max(next_campaign_, campaign_retry_at_)
                                                : campaign_retry_at_);
    }
    wake_.WaitUntil(mu_, until);
  }
  StepDown();
  DropLease(/*revoke=*/!suspended_);
  thread_done_ = true;
  wake_.NotifyAll();
}

void Election::StepDown() {
  if (!leading_) return;
  leading_ = false;
  term_ = 0;
  if (on_change_) {
    mu_.Unlock();
    on_change_(false);
    mu_.Lock();
  }
}

void Election::DropLease(bool revoke) {
  if (lease_ == 0) return;
  const int64_t lease = lease_;
  lease_ = 0;
  if (!revoke) return;  // etcd expires it
  // Revoking deletes the key with the lease, atomically: the key is ours
  // (bound to this lease) or gone, so no compare is needed.
  mu_.Unlock();
  (void)client_.LeaseRevoke(lease, CallDeadline(Clock::now() + call_timeout_));
  mu_.Lock();
}

void Election::Grant() {
  const Clock::time_point sent = Clock::now();
  mu_.Unlock();
  absl::StatusOr<etcdserverpb::LeaseGrantResponse> granted =
      client_.LeaseGrant(options_.ttl.count(), CallDeadline(sent + call_timeout_));
  mu_.Lock();
  if (!granted.ok() || !granted->error().empty() || granted->id() == 0 || granted->ttl() <= 0) {
    grant_retry_at_ = Clock::now() + grant_backoff_;
    grant_backoff_ = std::min<Clock::duration>(grant_backoff_ * 2, kMaxBackoff);
    return;
  }
  grant_backoff_ = kMinBackoff;
  lease_ = granted->id();
  lease_ttl_ = seconds(granted->ttl());
  // etcd starts the TTL when the grant arrives, after `sent`.
  lease_valid_until_ = sent + lease_ttl_ - Margin(lease_ttl_);
  next_renewal_ = sent + lease_ttl_ / 3;
}

void Election::Renew() {
  const Clock::time_point sent = Clock::now();
  const int64_t lease = lease_;
  // A renewal answered after the belief ran out is of no use.
  const Deadline deadline = CallDeadline(std::min(sent + call_timeout_, lease_valid_until_));
  mu_.Unlock();
  absl::StatusOr<int64_t> ttl = client_.KeepAliveOnce(lease, deadline);
  mu_.Lock();
  if (ttl.ok()) {
    const Clock::duration renewed = seconds(*ttl);
    lease_valid_until_ = std::max(lease_valid_until_, sent + renewed - Margin(renewed));
    next_renewal_ = sent + renewed / 3;
    if (leading_) valid_until_ = lease_valid_until_;
    return;
  }
  if (ttl.status().code() == absl::StatusCode::kNotFound) {
    // Expired or revoked in etcd, and the key with it.
    StepDown();
    DropLease(/*revoke=*/false);
    return;
  }
  next_renewal_ = Clock::now() + kRenewRetry;
}

void Election::Campaign() {
  const int64_t lease = lease_;
  etcdserverpb::TxnRequest txn;
  etcdserverpb::Compare* absent = txn.add_compare();
  absent->set_key(options_.key);
  absent->set_target(etcdserverpb::Compare::CREATE);
  absent->set_result(etcdserverpb::Compare::EQUAL);
  absent->set_create_revision(0);
  etcdserverpb::PutRequest* put = txn.add_success()->mutable_request_put();
  put->set_key(options_.key);
  put->set_value(options_.candidate);
  put->set_lease(lease);
  txn.add_failure()->mutable_request_range()->set_key(options_.key);
  const Deadline deadline =
      CallDeadline(std::min(Clock::now() + call_timeout_, lease_valid_until_));
  mu_.Unlock();
  absl::StatusOr<etcdserverpb::TxnResponse> answer = client_.Txn(txn, deadline);
  mu_.Lock();
  const Clock::time_point now = Clock::now();
  if (!answer.ok()) {
    campaign_retry_at_ = next_campaign_ = now + campaign_backoff_;
    campaign_backoff_ = std::min<Clock::duration>(campaign_backoff_ * 2, kMaxBackoff);
    return;
  }
  campaign_backoff_ = kMinBackoff;
  campaign_retry_at_ = now;
  next_campaign_ = now + lease_ttl_;

  const int64_t revision = answer->header().revision();
  int64_t won_term = 0;
  if (answer->succeeded()) {
    mvccpb::KeyValue kv;
    kv.set_key(options_.key);
    kv.set_value(options_.candidate);
    kv.set_lease(lease);
    kv.set_create_revision(revision);
    kv.set_mod_revision(revision);
    kv.set_version(1);
    Observe(revision, &kv);
    won_term = revision;
  } else {
    const mvccpb::KeyValue* kv = nullptr;
    if (!answer->responses().empty() && !answer->responses(0).response_range().kvs().empty()) {
      kv = &answer->responses(0).response_range().kvs(0);
    }
    Observe(revision, kv);
    // Bound to our lease: an earlier attempt of this put was applied but its
    // answer lost (the client retries). The tenure is ours all the same.
    if (kv != nullptr && kv->lease() == lease) won_term = kv->create_revision();
  }
  if (won_term == 0) return;
  // Not announced when the belief already ran out (the next step drops the
  // lease, which deletes the key) or the node is leaving.
  if (now >= lease_valid_until_ || stopping_ || resign_requested_) return;
  leading_ = true;
  term_ = won_term;
  valid_until_ = lease_valid_until_;
  if (KeyLost()) {  // the watch already saw it go
    leading_ = false;
    term_ = 0;
    return;
  }
  if (on_change_) {
    mu_.Unlock();
    on_change_(true);
    mu_.Lock();
  }
}

}  // namespace muster::etcd
