// muster::GrpcChannelPool: channels kept in step with Discovery by one
// listener per followed ServiceQuery; calls run through muster::Caller.
//
// State:
//   channels  one Held per ChannelKey (address + credentials object), with
//             the number of members that use it; made with its first member,
//             dropped with its last.
//   followed  per followed query: its Discovery listener, a token that tells
//             this listener's calls apart from those of an earlier listener
//             of the same query, and the members: the key of each instance
//             (by id) in the snapshot's `healthy` list.
// Each snapshot is applied whole: the new members acquire their keys first,
// then the old ones release theirs, so an instance that stays (or a new one
// at an address already held) keeps its channel.
//
// Who runs what:
//   - Apply, the listener, runs under Discovery's lock for the service: on
//     the registry backend's thread for updates, on the thread in
//     AddListener for the first snapshot, on the thread in Forget or
//     ~Discovery for the null one. It takes mu as a writer and never calls
//     into Discovery. Channels it releases are destroyed after mu is
//     released.
//   - Call, Channel and Follow run on the application's threads. Because
//     Apply takes mu under Discovery's lock, mu is never held while calling
//     into Discovery. follow_mu serializes adding listeners, so that a query
//     gets one; it is taken before Discovery's locks, and Apply never takes
//     it.
//   - Retries and ejection are the Caller's (thread-safe by itself).
#include "muster/grpc_channel_pool.h"

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include <grpcpp/create_channel.h>

#include "absl/base/thread_annotations.h"
#include "client/service_query.h"
#include "core/mutex.h"

namespace muster {
namespace {

// What a channel is shared by: instances at one address with one
// credentials object (compared by identity).
struct ChannelKey {
  std::string address;
  const grpc::ChannelCredentials* credentials = nullptr;

  friend bool operator==(const ChannelKey&, const ChannelKey&) = default;
};

struct ChannelKeyLess {
  bool operator()(const ChannelKey& a, const ChannelKey& b) const {
    if (a.address != b.address) return a.address < b.address;
    return std::less<const grpc::ChannelCredentials*>()(a.credentials, b.credentials);
  }
};

struct Held {
  std::shared_ptr<grpc::Channel> channel;
  // Keeps the key's credentials alive, so that its address is not reused by
  // other credentials while the key is in the map.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  size_t members = 0;
};

struct Followed {
  uint64_t token = 0;
  ListenerId listener = 0;                    // 0 until AddListener returned
  std::map<std::string, ChannelKey> members;  // healthy instance id -> its channel's key
};

using Dropped = std::vector<std::shared_ptr<grpc::Channel>>;

}  // namespace

struct GrpcChannelPool::Impl {
  Impl(Discovery* d, GrpcChannelPoolOptions o)
      : discovery(d), options(std::move(o)), caller(d, options.call_policy) {}

  // Constant after construction.
  Discovery* const discovery;
  const GrpcChannelPoolOptions options;
  Caller caller;

  // Serializes adding listeners (EnsureFollowed) and removing them (the
  // destructor).
  Mutex follow_mu ABSL_ACQUIRED_BEFORE(mu);
  uint64_t next_token ABSL_GUARDED_BY(follow_mu) = 1;

  // The channels and the followed queries.
  mutable SharedMutex mu;
  std::map<ChannelKey, Held, ChannelKeyLess> channels ABSL_GUARDED_BY(mu);
  std::unordered_map<ServiceQuery, Followed, ServiceQueryHash> followed ABSL_GUARDED_BY(mu);

  std::shared_ptr<grpc::ChannelCredentials> CredentialsFor(const Instance& instance) const {
    if (options.credentials_for) {
      if (auto chosen = options.credentials_for(instance)) return chosen;
    }
    return options.credentials;
  }

  // A new channel (null credentials make gRPC's lame channel, whose calls
  // fail with INVALID_ARGUMENT).
  std::shared_ptr<grpc::Channel> NewChannel(
      const std::string& address,
      const std::shared_ptr<grpc::ChannelCredentials>& credentials) const {
    return grpc::CreateCustomChannel(address, credentials, options.channel_args);
  }

  void Acquire(const ChannelKey& key, const std::shared_ptr<grpc::ChannelCredentials>& credentials)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    Held& held = channels[key];
    if (held.members++ > 0) return;
    held.credentials = credentials;
    held.channel = NewChannel(key.address, credentials);
    if (options.connect_at_once) held.channel->GetState(/*try_to_connect=*/true);
  }

  void Release(const ChannelKey& key, Dropped& dropped) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    auto it = channels.find(key);
    if (it == channels.end() || --it->second.members > 0) return;
    dropped.push_back(std::move(it->second.channel));
    channels.erase(it);
  }

  // The listener of `query`: makes the members of `snapshot` its members
  // (null: the query is no longer followed).
  void Apply(const ServiceQuery& query, uint64_t token,
             const std::shared_ptr<const ServiceSnapshot>& snapshot) ABSL_LOCKS_EXCLUDED(mu) {
    Dropped dropped;  // destroyed after the lock is released
    WriterLock lock(mu);
    auto it = followed.find(query);
    if (snapshot == nullptr) {
      if (it == followed.end() || it->second.token != token) return;
      for (const auto& [id, key] : it->second.members) Release(key, dropped);
      followed.erase(it);
      return;
    }
    if (it == followed.end()) {
      it = followed.emplace(query, Followed{}).first;
      it->second.token = token;
    } else if (it->second.token != token) {
      return;  // a listener that was replaced (not expected to be called)
    }
    std::map<std::string, ChannelKey> members;
    for (const Instance& instance : *snapshot->healthy) {
      auto credentials = CredentialsFor(instance);
      auto [member, added] =
          members.try_emplace(instance.id, ChannelKey{instance.address, credentials.get()});
      if (added) Acquire(member->second, credentials);
    }
    for (const auto& [id, key] : it->second.members) Release(key, dropped);
    it->second.members = std::move(members);
  }

  bool IsFollowed(const ServiceQuery& query) const ABSL_LOCKS_EXCLUDED(mu) {
    ReaderLock lock(mu);
    return followed.contains(query);
  }

  // Follows `query` (adds its listener) unless it is followed already.
  absl::Status EnsureFollowed(const ServiceQuery& query) ABSL_LOCKS_EXCLUDED(mu, follow_mu) {
    if (IsFollowed(query)) return absl::OkStatus();
    // The first list is awaited without the pool's locks, so that a service
    // with no list yet does not hold up the first use of the others.
    if (auto first = discovery->Get(query); !first.ok()) return first.status();
    MutexLock serial(follow_mu);
    if (IsFollowed(query)) return absl::OkStatus();
    const uint64_t token = next_token++;
    auto id = discovery->AddListener(
        query, [this, query, token](const std::shared_ptr<const ServiceSnapshot>& snapshot) {
          Apply(query, token, snapshot);
        });
    if (!id.ok()) return id.status();
    WriterLock lock(mu);
    auto it = followed.find(query);
    // Absent when the service was forgotten since: the listener is gone too.
    if (it != followed.end() && it->second.token == token) it->second.listener = *id;
    return absl::OkStatus();
  }

  // The held channel for `key`, or null.
  std::shared_ptr<grpc::Channel> Find(const ChannelKey& key) const ABSL_LOCKS_EXCLUDED(mu) {
    ReaderLock lock(mu);
    auto it = channels.find(key);
    return it == channels.end() ? nullptr : it->second.channel;
  }

  // The channel for an attempt on `instance`, picked for `query`: the
  // member's, or (around an update, see the header) one of its own.
  std::shared_ptr<grpc::Channel> ForAttempt(const ServiceQuery& query, const Instance& instance)
      ABSL_LOCKS_EXCLUDED(mu) {
    {
      ReaderLock lock(mu);
      auto f = followed.find(query);
      if (f != followed.end()) {
        auto m = f->second.members.find(instance.id);
        if (m != f->second.members.end() && m->second.address == instance.address) {
          auto c = channels.find(m->second);
          if (c != channels.end()) return c->second.channel;
        }
      }
    }
    return NewChannel(instance.address, CredentialsFor(instance));
  }
};

GrpcChannelPool::GrpcChannelPool(Discovery* discovery, GrpcChannelPoolOptions options)
    : impl_(std::make_unique<Impl>(discovery, std::move(options))) {}

GrpcChannelPool::~GrpcChannelPool() {
  MutexLock serial(impl_->follow_mu);
  std::vector<ListenerId> listeners;
  {
    ReaderLock lock(impl_->mu);
    for (const auto& [query, followed] : impl_->followed) listeners.push_back(followed.listener);
  }
  // Once these return no listener runs: the channels can go with impl_.
  for (ListenerId id : listeners) impl_->discovery->RemoveListener(id);
}

grpc::Status GrpcChannelPool::Call(const ServiceQuery& query, const Attempt& attempt,
                                   const PickRequest& request) {
  if (absl::Status s = impl_->EnsureFollowed(query); !s.ok()) return ToGrpcStatus(s);
  bool attempted = false;
  grpc::Status last;
  absl::Status s = impl_->caller.Call(
      query,
      [&](const Instance& instance) {
        attempted = true;
        last = attempt(impl_->ForAttempt(query, instance), instance);
        return FromGrpcStatus(last);
      },
      request);
  // Once an attempt ran, the Caller returns the last attempt's status: give
  // it back as gRPC said it, details included.
  return attempted ? last : ToGrpcStatus(s);
}

std::shared_ptr<grpc::Channel> GrpcChannelPool::Channel(const Instance& instance) {
  auto credentials = impl_->CredentialsFor(instance);
  const ChannelKey key{instance.address, credentials.get()};
  if (auto held = impl_->Find(key)) return held;
  ServiceQuery service;
  service.ns = instance.ns;
  service.service = instance.service;
  if (impl_->EnsureFollowed(service).ok()) {
    if (auto held = impl_->Find(key)) return held;
  }
  return impl_->NewChannel(instance.address, credentials);
}

absl::Status GrpcChannelPool::Follow(const ServiceQuery& query) {
  return impl_->EnsureFollowed(query);
}

bool GrpcChannelPool::IsEjected(const ServiceQuery& query, const std::string& id) const {
  return impl_->caller.IsEjected(query, id);
}

size_t GrpcChannelPool::channel_count() const {
  ReaderLock lock(impl_->mu);
  return impl_->channels.size();
}

}  // namespace muster
