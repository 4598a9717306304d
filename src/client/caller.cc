// muster::Caller: retries on other instances and outlier ejection on top of
// Discovery::Pick.
//
// Ejection state is kept per service, and only for instances with a failure
// history (a success on a clean instance finds nothing to update and leaves no
// trace); instances that left the service are dropped from it on the next
// failure. An ejection ends by itself when its time passes: nothing sweeps.
//
// Who runs what: everything runs on the threads that call Call and IsEjected;
// the Caller has no thread of its own. The map of services is read under a
// shared lock; each service's table has its own mutex, held briefly.
#include "muster/call.h"

#include <algorithm>
#include <functional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "client/service_query.h"
#include "core/mutex.h"
#include "core/strings.h"

namespace muster {
namespace {

using SteadyTime = std::chrono::steady_clock::time_point;

// What is remembered about an instance that has failed.
struct Outlier {
  int consecutive_failures = 0;
  int times_ejected = 0;     // decays by one per base_ejection spent un-ejected
  SteadyTime ejected_until;  // in the past when not ejected
};

// The failure table of one service.
struct ServiceHealth {
  Mutex mu;
  std::unordered_map<std::string, Outlier> by_id ABSL_GUARDED_BY(mu);
};

bool Contains(const std::vector<std::string>& ids, const std::string& id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

}  // namespace

struct Caller::Impl {
  Impl(Discovery* d, CallPolicy p) : discovery(d), policy(std::move(p)) {
    if (!policy.now) policy.now = [] { return std::chrono::steady_clock::now(); };
  }

  // Constant after construction.
  Discovery* const discovery;
  CallPolicy policy;

  mutable SharedMutex services_mu;
  std::unordered_map<ServiceQuery, std::shared_ptr<ServiceHealth>, ServiceQueryHash> services
      ABSL_GUARDED_BY(services_mu);

  bool Retryable(const absl::Status& s) const {
    return std::find(policy.retry_on.begin(), policy.retry_on.end(), s.code()) !=
           policy.retry_on.end();
  }

  std::shared_ptr<ServiceHealth> Find(const ServiceQuery& query) const {
    ReaderLock lock(services_mu);
    auto it = services.find(query);
    return it == services.end() ? nullptr : it->second;
  }

  std::shared_ptr<ServiceHealth> FindOrCreate(const ServiceQuery& query) {
    if (auto found = Find(query)) return found;
    WriterLock lock(services_mu);
    auto& slot = services[query];
    if (slot == nullptr) slot = std::make_shared<ServiceHealth>();
    return slot;
  }

  // How many ejections `o` has worked off: one per base_ejection spent
  // un-ejected since its last ejection ended.
  int Decayed(const Outlier& o, SteadyTime now) const {
    if (o.times_ejected == 0 || now <= o.ejected_until || policy.base_ejection.count() <= 0) {
      return o.times_ejected;
    }
    auto periods = (now - o.ejected_until) / policy.base_ejection;
    return static_cast<int>(std::max<int64_t>(0, o.times_ejected - periods));
  }

  // The ids of the service's instances ejected right now.
  std::vector<std::string> Ejected(const ServiceQuery& query) const {
    std::vector<std::string> ids;
    auto health = Find(query);
    if (health == nullptr) return ids;
    const SteadyTime now = policy.now();
    MutexLock lock(health->mu);
    for (const auto& [id, o] : health->by_id) {
      if (o.ejected_until > now) ids.push_back(id);
    }
    return ids;
  }

  // The instance answered (success, or an error that is not a transport
  // failure): its run of failures ends.
  void Reached(const ServiceQuery& query, const std::string& id) {
    auto health = Find(query);
    if (health == nullptr) return;
    const SteadyTime now = policy.now();
    MutexLock lock(health->mu);
    auto it = health->by_id.find(id);
    if (it == health->by_id.end()) return;
    it->second.consecutive_failures = 0;
    if (it->second.ejected_until <= now && Decayed(it->second, now) == 0) health->by_id.erase(it);
  }

  // A transport failure on the instance: count it, and eject the instance
  // when its run of failures reaches the threshold and the share allows.
  void Failed(const ServiceQuery& query, const std::string& id) {
    // The service is followed already (we just picked from it): no waiting.
    auto snapshot = discovery->Get(query);
    const size_t known = snapshot.ok() ? (*snapshot)->instances->size() : 0;
    auto health = FindOrCreate(query);
    const SteadyTime now = policy.now();
    MutexLock lock(health->mu);
    if (snapshot.ok()) {
      // Forget instances that left the service, so that the table stays
      // bounded and gone instances do not use up the ejection share. (The
      // table holds only instances with failures: this pass is short.)
      const std::vector<Instance>& instances = *(*snapshot)->instances;  // sorted by id
      std::erase_if(health->by_id, [&](const auto& entry) {
        auto it = std::lower_bound(
            instances.begin(), instances.end(), entry.first,
            [](const Instance& in, const std::string& key) { return in.id < key; });
        return entry.first != id && (it == instances.end() || it->id != entry.first);
      });
    }
    Outlier& o = health->by_id[id];
    if (o.ejected_until > now) return;  // picked before it was ejected
    if (++o.consecutive_failures < std::max(1, policy.consecutive_failures_to_eject)) return;

    size_t ejected = 0;
    for (const auto& [other_id, other] : health->by_id) {
      if (other.ejected_until > now) ++ejected;
    }
    const double share = std::clamp(policy.max_ejected_share, 0.0, 1.0);
    const auto limit = static_cast<size_t>(share * static_cast<double>(known));
    if (ejected + 1 > limit) return;  // stays at the threshold: the next failure tries again

    // base * times ejected, at most max_ejection. The count stops growing
    // once the cap is reached, so it decays back from there.
    const auto base = std::max(policy.base_ejection, std::chrono::milliseconds(0));
    const auto cap = std::max(policy.max_ejection, base);
    int64_t max_times = 1;
    if (base.count() > 0) max_times = std::max<int64_t>(1, (cap + base - std::chrono::milliseconds(1)) / base);
    o.times_ejected = static_cast<int>(std::min<int64_t>(Decayed(o, now) + 1, max_times));
    o.ejected_until = now + std::min<std::chrono::milliseconds>(base * o.times_ejected, cap);
    o.consecutive_failures = 0;
  }
};

Caller::Caller(Discovery* discovery, CallPolicy policy)
    : impl_(std::make_unique<Impl>(discovery, std::move(policy))) {}

Caller::~Caller() = default;

absl::Status Caller::Call(const ServiceQuery& query, const Attempt& attempt,
                          const PickRequest& request) {
  const int max_attempts = std::max(1, impl_->policy.max_attempts);
  std::vector<std::string> tried;
  absl::Status last;
  for (int n = 0; n < max_attempts; ++n) {
    std::vector<std::string> ejected = impl_->Ejected(query);
    PickRequest pick;
    pick.hash_key = request.hash_key;
    pick.excluded = [&](const Instance& in) {
      return Contains(tried, in.id) || Contains(ejected, in.id) ||
             (request.excluded && request.excluded(in));
    };
    auto picked = impl_->discovery->Pick(query, pick);
    if (!picked.ok() && !ejected.empty()) {
      // Ejection never leaves a call without an instance: when the ejected
      // ones are all that is left, use them (as Envoy's panic mode).
      ejected.clear();
      picked = impl_->discovery->Pick(query, pick);
    }
    if (!picked.ok()) return n == 0 ? picked.status() : last;

    const Instance& instance = picked->instance();
    absl::Status status = attempt(instance);
    impl_->discovery->Done(query, *picked, status.ok());
    if (status.ok() || !impl_->Retryable(status)) {
      impl_->Reached(query, instance.id);
      return status;
    }
    impl_->Failed(query, instance.id);
    tried.push_back(instance.id);
    last = std::move(status);
  }
  return last;
}

bool Caller::IsEjected(const ServiceQuery& query, const std::string& id) const {
  return Contains(impl_->Ejected(query), id);
}

}  // namespace muster
