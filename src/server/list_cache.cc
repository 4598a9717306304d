#include "server/list_cache.h"

#include <utility>

namespace muster {

std::string ListCache::KeyOf(std::string_view ns, std::string_view service, const ListFilter& filter) {
  // Each part as its length and its bytes: unambiguous whatever the bytes
  // (a metadata filter from the query string is not a validated name).
  std::string key;
  key.reserve(ns.size() + service.size() + filter.version.size() + 16);
  auto part = [&key](std::string_view p) { key.append(std::to_string(p.size())).append(":").append(p); };
  part(ns);
  part(service);
  key.push_back(filter.healthy_only ? 'h' : 'a');
  part(filter.version);
  for (const auto& [k, v] : filter.metadata) {
    part(k);
    part(v);
  }
  key.push_back('t');  // not a digit: ends the metadata parts
  for (const std::string& t : filter.tags) part(t);
  return key;
}

std::shared_ptr<const std::string> ListCache::Find(const std::string& key,
                                                   uint64_t service_revision) const {
  ReaderLock lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.service_revision != service_revision) return nullptr;
  return it->second.json;
}

void ListCache::Store(std::string key, uint64_t service_revision,
                      std::shared_ptr<const std::string> json) {
  Entry entry{service_revision, std::move(json)};
  const size_t cost = Cost(key, entry);
  if (cost > byte_limit_) return;
  WriterLock lock(mu_);
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    if (it->second.service_revision > service_revision) return;
    bytes_ -= Cost(it->first, it->second);
    entries_.erase(it);
  }
  while (bytes_ + cost > byte_limit_ && !entries_.empty()) {
    auto victim = entries_.begin();
    bytes_ -= Cost(victim->first, victim->second);
    entries_.erase(victim);
  }
  bytes_ += cost;
  entries_.emplace(std::move(key), std::move(entry));
}

size_t ListCache::bytes() const {
  ReaderLock lock(mu_);
  return bytes_;
}

size_t ListCache::entries() const {
  ReaderLock lock(mu_);
  return entries_.size();
}

}  // namespace muster
