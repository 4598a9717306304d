#include "core/lease_table.h"

namespace muster {

LeaseId LeaseTable::Grant(const InstanceKey& key, std::chrono::seconds ttl) {
  MutexLock lock(mu_);
  LeaseId id = next_id_++;
  int64_t ttl_ns = std::chrono::nanoseconds(ttl).count();
  int64_t deadline = NowNs() + ttl_ns;
  leases_.emplace(id, Lease{key, ttl_ns, deadline, deadline});
  heap_.push({deadline, id});
  return id;
}

void LeaseTable::ResetDeadline(LeaseId id, Lease& lease) {
  lease.deadline_ns = NowNs() + lease.ttl_ns;
  if (lease.deadline_ns < lease.heap_deadline_ns) {
    lease.heap_deadline_ns = lease.deadline_ns;
    heap_.push({lease.deadline_ns, id});
  }
}

bool LeaseTable::Refresh(LeaseId id, std::chrono::seconds ttl) {
  MutexLock lock(mu_);
  auto it = leases_.find(id);
  if (it == leases_.end()) return false;
  it->second.ttl_ns = std::chrono::nanoseconds(ttl).count();
  ResetDeadline(id, it->second);
  return true;
}

bool LeaseTable::Renew(LeaseId id) {
  MutexLock lock(mu_);
  auto it = leases_.find(id);
  if (it == leases_.end()) return false;
  ResetDeadline(id, it->second);
  return true;
}

void LeaseTable::Revoke(LeaseId id) {
  MutexLock lock(mu_);
  leases_.erase(id);
}

LeaseId LeaseTable::Keep(LeaseId lease, const InstanceKey& key, std::chrono::seconds ttl) {
  if (ttl.count() == 0) {
    if (lease != 0) Revoke(lease);
    return 0;
  }
  if (lease != 0 && Refresh(lease, ttl)) return lease;
  return Grant(key, ttl);
}

std::vector<LeaseTable::Expired> LeaseTable::TakeExpired(size_t max) {
  std::vector<Expired> out;
  MutexLock lock(mu_);
  int64_t now = NowNs();
  while (!heap_.empty() && heap_.top().deadline_ns <= now && out.size() < max) {
    Entry top = heap_.top();
    heap_.pop();
    auto it = leases_.find(top.id);
    if (it == leases_.end() || it->second.heap_deadline_ns != top.deadline_ns) continue;
    Lease& lease = it->second;
    if (lease.deadline_ns > now) {  // renewed since the entry was pushed
      lease.heap_deadline_ns = lease.deadline_ns;
      heap_.push({lease.deadline_ns, top.id});
      continue;
    }
    out.push_back({top.id, std::move(lease.key), lease.ttl_ns});
    leases_.erase(it);
  }
  return out;
}

void LeaseTable::Restore(Expired expired) {
  MutexLock lock(mu_);
  const int64_t deadline = NowNs() + expired.ttl_ns;
  leases_.insert_or_assign(expired.id, Lease{std::move(expired.key), expired.ttl_ns, deadline, deadline});
  heap_.push({deadline, expired.id});
}

size_t LeaseTable::size() const {
  MutexLock lock(mu_);
  return leases_.size();
}

}  // namespace muster
