// Test helpers for the SDK's unit tests: a pass-through decorator over a real
// Registry that can do what the memory backend cannot — report instances as
// critical (as active health checks will) and report an outage to its
// subscribers — and a bounded wait for a condition.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "core/mutex.h"
#include "muster/discovery.h"
#include "muster/registry.h"

namespace muster::testing {

// Instances with this metadata key set to "critical" are delivered to
// subscribers with health kCritical.
inline constexpr char kHealthKey[] = "test.health";

class OverlayRegistry final : public Registry {
 public:
  explicit OverlayRegistry(Registry* inner) : inner_(inner) {}
  ~OverlayRegistry() override = default;

  absl::StatusOr<Instance> Register(const Instance& instance, const CallOptions& o) override {
    return inner_->Register(instance, o);
  }
  absl::Status Deregister(const InstanceKey& key, const CallOptions& o) override {
    return inner_->Deregister(key, o);
  }
  absl::Status UpdateService(const InstanceKey& key, const CallOptions& o) override {
    return inner_->UpdateService(key, o);
  }
  absl::StatusOr<ServiceList> ListServices(const ServiceQuery& q, const CallOptions& o) override {
    return inner_->ListServices(q, o);
  }

  absl::StatusOr<SubscriptionId> Subscribe(const ServiceQuery& query,
                                           WatchCallback callback) override {
    auto sub = std::make_shared<Sub>();
    sub->callback = std::move(callback);
    auto id = inner_->Subscribe(query, [sub](const WatchUpdate& u) { sub->Deliver(Overlay(u)); });
    if (!id.ok()) return id;
    MutexLock lock(mu_);
    subs_.emplace(*id, sub);
    return id;
  }

  void Unsubscribe(SubscriptionId id) override {
    inner_->Unsubscribe(id);
    std::shared_ptr<Sub> sub;
    {
      MutexLock lock(mu_);
      auto it = subs_.find(id);
      if (it == subs_.end()) return;
      sub = it->second;
      subs_.erase(it);
    }
    MutexLock lock(sub->mu);  // waits for an injected update in flight
    sub->dead = true;
  }

  void Close() override { inner_->Close(); }

  // Delivers an update with `status` to every subscription, as a backend does
  // when the registry becomes unreachable.
  void InjectOutage(absl::Status status) {
    std::map<SubscriptionId, std::shared_ptr<Sub>> subs;
    {
      MutexLock lock(mu_);
      subs = subs_;
    }
    WatchUpdate update;
    update.status = std::move(status);
    for (auto& [id, sub] : subs) sub->Deliver(update);
  }

 private:
  struct Sub {
    Mutex mu;  // one update at a time, as the Registry contract promises
    WatchCallback callback;
    bool dead ABSL_GUARDED_BY(mu) = false;
    void Deliver(const WatchUpdate& u) {
      MutexLock lock(mu);
      if (!dead) callback(u);
    }
  };

  static void Mark(Instance& in) {
    auto it = in.metadata.find(kHealthKey);
    if (it != in.metadata.end() && it->second == "critical") in.health = Health::kCritical;
  }
  static WatchUpdate Overlay(WatchUpdate u) {
    for (Instance& in : u.instances) Mark(in);
    for (Change& c : u.changes) Mark(c.instance);
    return u;
  }

  Registry* const inner_;
  Mutex mu_;
  std::map<SubscriptionId, std::shared_ptr<Sub>> subs_ ABSL_GUARDED_BY(mu_);
};

// A registry whose subscriptions deliver only what the test hands them with
// Deliver: for what no real backend does on cue (no first list for a while,
// an outage before it, the musterd backend's empty "reachable again" update).
// Every other call is FailedPrecondition.
class ScriptedRegistry final : public Registry {
 public:
  absl::StatusOr<Instance> Register(const Instance&, const CallOptions&) override { return No(); }
  absl::Status Deregister(const InstanceKey&, const CallOptions&) override { return No(); }
  absl::Status UpdateService(const InstanceKey&, const CallOptions&) override { return No(); }
  absl::StatusOr<ServiceList> ListServices(const ServiceQuery&, const CallOptions&) override {
    return No();
  }
  absl::StatusOr<SubscriptionId> Subscribe(const ServiceQuery&, WatchCallback callback) override {
    MutexLock lock(mu_);
    callbacks_.emplace(next_, std::move(callback));
    return next_++;
  }
  void Unsubscribe(SubscriptionId id) override {
    MutexLock lock(mu_);  // waits for a Deliver in progress
    callbacks_.erase(id);
  }
  void Close() override {
    MutexLock lock(mu_);
    callbacks_.clear();
  }

  // Runs every subscription's callback with `update`, on the calling thread.
  void Deliver(const WatchUpdate& update) {
    MutexLock lock(mu_);
    for (auto& [id, callback] : callbacks_) callback(update);
  }

  size_t subscriptions() {
    MutexLock lock(mu_);
    return callbacks_.size();
  }

 private:
  static absl::Status No() { return absl::FailedPreconditionError("scripted registry"); }

  Mutex mu_;
  SubscriptionId next_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<SubscriptionId, WatchCallback> callbacks_ ABSL_GUARDED_BY(mu_);
};

// Checks `predicate` every few milliseconds until it holds or `timeout`
// passes; returns its last answer. For state another thread changes (the
// Discovery cache, filled by the registry's delivery thread).
template <typename Predicate>
bool Eventually(Predicate predicate,
                std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!predicate()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

inline Instance MakeInstance(const std::string& service, const std::string& id, int port,
                             uint32_t ttl_seconds = 0) {
  Instance in;
  in.service = service;
  in.id = id;
  in.address = "127.0.0.1:" + std::to_string(port);
  in.ttl_seconds = ttl_seconds;
  return in;
}

// Designated initializers would be shorter, but GCC 12 warns about the
// fields they leave out (-Wmissing-field-initializers).
inline ServiceQuery Service(std::string name, std::string version = "") {
  ServiceQuery q;
  q.service = std::move(name);
  q.version = std::move(version);
  return q;
}

inline DiscoveryOptions Options(std::string balancer, double protect_threshold = 0) {
  DiscoveryOptions o;
  o.balancer = std::move(balancer);
  o.protect_threshold = protect_threshold;
  return o;
}

inline PickRequest HashKey(uint64_t key) {
  PickRequest r;
  r.hash_key = key;
  return r;
}

// Picks only the instance `id`.
inline PickRequest Only(std::string id) {
  PickRequest r;
  r.excluded = [id = std::move(id)](const Instance& in) { return in.id != id; };
  return r;
}

}  // namespace muster::testing
