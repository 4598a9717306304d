#include "catalog/watch_hub.h"

#include <algorithm>

namespace muster {

bool WatchFilter::Matches(const Instance& instance) const {
  if (instance.ns != ns) return false;
  if (services.empty()) return true;
  return std::find(services.begin(), services.end(), instance.service) != services.end();
}

std::string WatchHub::IndexKey(std::string_view ns, std::string_view service) {
  std::string key;
  key.reserve(ns.size() + 1 + service.size());
  key.append(ns).push_back('\0');
  key.append(service);
  return key;
}

void WatchHub::Reset(uint64_t revision) {
  MutexLock lock(mu_);
  history_.clear();
  bytes_ = 0;
  first_revision_ = revision + 1;
  last_revision_ = revision;
}

WatchHub::Wakeups WatchHub::Append(std::vector<Event> events) {
  Wakeups wakeups;
  if (events.empty()) return wakeups;
  // Keys touched, to find the subscribers after the history is updated.
  std::vector<std::string> keys;
  {
    MutexLock lock(mu_);
    for (Event& e : events) {
      keys.push_back(IndexKey(e.instance->ns, e.instance->service));
      keys.push_back(IndexKey(e.instance->ns, ""));
      last_revision_ = e.revision;
      e.text = std::make_shared<EventText>();
      e.bytes = ApproximateBytes(e);
      bytes_ += e.bytes;
      history_.push_back(std::move(e));
    }
    // Drop whole revisions only, so that a revision is never half retained,
    // and never the newest.
    while ((history_.size() > history_limit_ || bytes_ > history_bytes_) &&
           history_.front().revision != history_.back().revision) {
      const uint64_t dropped = history_.front().revision;
      while (history_.front().revision == dropped) {
        bytes_ -= history_.front().bytes;
        history_.pop_front();
      }
      first_revision_ = dropped + 1;
    }
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  {
    MutexLock lock(subs_mu_);
    for (const std::string& key : keys) {
      auto it = by_key_.find(key);
      if (it == by_key_.end()) continue;
      for (SubscriptionId id : it->second) wakeups.subscribers_.push_back(subscribers_.at(id));
    }
  }
  return wakeups;
}

void WatchHub::Wake(Wakeups wakeups) {
  for (const auto& s : wakeups.subscribers_) s->notify();
}

WatchHub::ReadResult WatchHub::Read(uint64_t from, const WatchFilter& filter, size_t max,
                                    size_t max_bytes) const {
  ReadResult out;
  MutexLock lock(mu_);
  if (from < first_revision_) {
    out.compacted = true;
    out.next = from;
    return out;
  }
  out.next = std::max(from, last_revision_ + 1);
  auto it = std::lower_bound(history_.begin(), history_.end(), from,
                             [](const Event& e, uint64_t rev) { return e.revision < rev; });
  size_t bytes = 0;
  for (; it != history_.end(); ++it) {
    // Stop between revisions only: a revision's events are read together.
    if ((out.events.size() >= max || bytes >= max_bytes) && !out.events.empty() &&
        it->revision != out.events.back().revision) {
      out.next = it->revision;
      out.more = true;
      break;
    }
    if (filter.Matches(*it->instance)) {
      out.events.push_back(*it);
      bytes += it->bytes;
    }
  }
  return out;
}

WatchHub::HistoryStats WatchHub::history_stats() const {
  MutexLock lock(mu_);
  return HistoryStats{history_.size(), bytes_, first_revision_};
}

uint64_t WatchHub::last_revision() const {
  MutexLock lock(mu_);
  return last_revision_;
}

uint64_t WatchHub::oldest_retained() const {
  MutexLock lock(mu_);
  return first_revision_;
}

WatchHub::SubscriptionId WatchHub::Subscribe(const WatchFilter& filter,
                                             std::function<void()> notify) {
  MutexLock lock(subs_mu_);
  SubscriptionId id = next_subscription_++;
  subscribers_.emplace(id, std::make_shared<Subscriber>(Subscriber{filter, std::move(notify)}));
  if (filter.services.empty()) {
    by_key_[IndexKey(filter.ns, "")].insert(id);
  } else {
    for (const std::string& s : filter.services) by_key_[IndexKey(filter.ns, s)].insert(id);
  }
  return id;
}

void WatchHub::Unsubscribe(SubscriptionId id) {
  MutexLock lock(subs_mu_);
  auto it = subscribers_.find(id);
  if (it == subscribers_.end()) return;
  const WatchFilter& f = it->second->filter;
  auto drop = [&](const std::string& key) {
    subs_mu_.AssertHeld();  // the lambda runs under the lock above
    auto k = by_key_.find(key);
    if (k == by_key_.end()) return;
    k->second.erase(id);
    if (k->second.empty()) by_key_.erase(k);
  };
  if (f.services.empty()) {
    drop(IndexKey(f.ns, ""));
  } else {
    for (const std::string& s : f.services) drop(IndexKey(f.ns, s));
  }
  subscribers_.erase(it);
}

void WatchHub::NotifyAll() {
  std::vector<std::shared_ptr<Subscriber>> all;
  {
    MutexLock lock(subs_mu_);
    for (auto& [id, s] : subscribers_) all.push_back(s);
  }
  for (const auto& s : all) s->notify();
}

size_t WatchHub::subscriber_count() const {
  MutexLock lock(subs_mu_);
  return subscribers_.size();
}

}  // namespace muster
