#include "catalog/catalog_view.h"

#include <algorithm>
#include <tuple>

#include "core/footprint.h"
#include "core/strings.h"

namespace muster {

bool CatalogView::Passes(const Instance& in, const ListFilter& filter) {
  if (!filter.version.empty() && in.version != filter.version) return false;
  if (filter.healthy_only &&
      (in.status != InstanceStatus::kEnabled || in.health == Health::kCritical)) {
    return false;
  }
  for (const auto& [key, value] : filter.metadata) {
    auto it = in.metadata.find(key);
    if (it == in.metadata.end() || it->second != value) return false;
  }
  return in.HasTags(filter.tags);
}

CatalogView::ListResult CatalogView::List(std::string_view ns, std::string_view service,
                                          const ListFilter& filter) const {
  ListResult out;
  ReaderLock lock(mu_);
  out.revision = revision_;
  auto s = services_.find(ServiceKeyRef{ns, service});
  if (s == services_.end()) return out;
  out.service_revision = s->second.last_change;
  out.instances.reserve(s->second.instances.size());
  for (const auto& [id, record] : s->second.instances) {
    if (Passes(*record.instance, filter)) out.instances.push_back(record.instance);
  }
  return out;
}

uint64_t CatalogView::ServiceRevision(std::string_view ns, std::string_view service) const {
  ReaderLock lock(mu_);
  auto s = services_.find(ServiceKeyRef{ns, service});
  return s == services_.end() ? 0 : s->second.last_change;
}

std::vector<ServiceSummary> CatalogView::Services(std::string_view ns, uint64_t* revision) const {
  std::vector<ServiceSummary> out;
  ReaderLock lock(mu_);
  if (revision != nullptr) *revision = revision_;
  ListFilter healthy;
  healthy.healthy_only = true;
  for (const auto& [key, state] : services_) {
    if (key.ns != ns || state.instances.empty()) continue;
    ServiceSummary summary{key.service, state.instances.size(), 0};
    for (const auto& [id, record] : state.instances) {
      if (Passes(*record.instance, healthy)) ++summary.healthy;
    }
    out.push_back(std::move(summary));
  }
  std::sort(out.begin(), out.end(),
            [](const ServiceSummary& a, const ServiceSummary& b) { return a.name < b.name; });
  return out;
}

CatalogView::Revisions CatalogView::RevisionsOf(std::string_view ns, std::string_view service) const {
  ReaderLock lock(mu_);
  auto s = services_.find(ServiceKeyRef{ns, service});
  return Revisions{revision_, s == services_.end() ? 0 : s->second.last_change};
}

uint64_t CatalogView::revision() const {
  ReaderLock lock(mu_);
  return revision_;
}

size_t CatalogView::instance_count() const {
  ReaderLock lock(mu_);
  return instance_count_;
}

size_t CatalogView::instance_bytes() const {
  ReaderLock lock(mu_);
  return instance_bytes_;
}

std::shared_ptr<const Instance> CatalogView::Get(const InstanceKey& key) const {
  ReaderLock lock(mu_);
  const Record* r = FindLocked(key);
  return r != nullptr ? r->instance : nullptr;
}

std::vector<std::shared_ptr<const Instance>> CatalogView::AllInstances() const {
  std::vector<std::shared_ptr<const Instance>> out;
  ReaderLock lock(mu_);
  out.reserve(instance_count_);
  for (const auto& [key, state] : services_) {
    for (const auto& [id, record] : state.instances) out.push_back(record.instance);
  }
  return out;
}

std::vector<std::shared_ptr<const Instance>> CatalogView::InNamespace(std::string_view ns,
                                                                      std::string_view id) const {
  std::vector<std::shared_ptr<const Instance>> out;
  {
    ReaderLock lock(mu_);
    for (const auto& [key, state] : services_) {
      if (key.ns != ns) continue;
      if (!id.empty()) {
        if (auto it = state.instances.find(absl::string_view(id.data(), id.size()));
            it != state.instances.end()) {
          out.push_back(it->second.instance);
        }
        continue;
      }
      for (const auto& [instance_id, record] : state.instances) out.push_back(record.instance);
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return std::tie(a->service, a->id) < std::tie(b->service, b->id);
  });
  return out;
}

void CatalogView::SetChangeListener(ChangeListener listener) {
  MutexLock lock(listener_mu_);
  listener_ = std::move(listener);
}

const CatalogView::Record* CatalogView::FindLocked(const InstanceKey& key) const {
  auto s = services_.find(ServiceKeyRef{key.ns, key.service});
  if (s == services_.end()) return nullptr;
  auto i = s->second.instances.find(key.id);
  return i == s->second.instances.end() ? nullptr : &i->second;
}

CatalogView::Usage CatalogView::UsageLocked(std::string_view ns, std::string_view service) const {
  auto s = services_.find(ServiceKeyRef{ns, service});
  if (s == services_.end()) return {};
  return Usage{s->second.instances.size(), s->second.bytes};
}

CatalogView::Record& CatalogView::PutLocked(std::shared_ptr<const Instance> instance,
                                            uint64_t change) {
  auto s = services_.find(ServiceKeyRef{instance->ns, instance->service});
  if (s == services_.end()) {
    s = services_.try_emplace(ServiceKey{instance->ns, instance->service}).first;
  }
  ServiceState& service = s->second;
  if (change != 0) service.last_change = std::max(service.last_change, change);
  auto [it, inserted] = service.instances.try_emplace(instance->id);
  Record& record = it->second;
  if (inserted) ++instance_count_;
  service.bytes -= record.bytes;
  instance_bytes_ -= record.bytes;
  record.bytes = ApproximateBytes(*instance);
  record.instance = std::move(instance);
  service.bytes += record.bytes;
  instance_bytes_ += record.bytes;
  return record;
}

std::optional<CatalogView::Record> CatalogView::EraseLocked(const InstanceKey& key,
                                                            uint64_t change) {
  auto s = services_.find(ServiceKeyRef{key.ns, key.service});
  if (s == services_.end()) return std::nullopt;
  ServiceState& service = s->second;
  service.last_change = std::max(service.last_change, change);
  auto it = service.instances.find(key.id);
  if (it == service.instances.end()) return std::nullopt;
  Record record = std::move(it->second);
  service.bytes -= record.bytes;
  instance_bytes_ -= record.bytes;
  service.instances.erase(it);
  --instance_count_;
  return record;
}

void CatalogView::ClearLocked(uint64_t revision) {
  for (auto& [key, service] : services_) {
    service.instances.clear();
    service.bytes = 0;
    service.last_change = revision;
  }
  instance_count_ = 0;
  instance_bytes_ = 0;
}

void CatalogView::AdvanceRevisionLocked(uint64_t revision) {
  revision_ = std::max(revision_, revision);
}

WatchHub::Wakeups CatalogView::Publish(std::vector<Event> events, bool reset) {
  MutexLock lock(listener_mu_);
  // The hub takes the events; a listener gets a copy (shared instances).
  std::vector<Event> copy;
  if (listener_) copy = events;
  WatchHub::Wakeups wakeups;
  if (reset) {
    hub_.NotifyAll();
  } else {
    wakeups = hub_.Append(std::move(events));
  }
  if (listener_) listener_(copy, reset);
  return wakeups;
}

absl::Status CheckInstanceLimit(const Limits& limits, std::string_view service, int64_t instances) {
  if (instances < static_cast<int64_t>(limits.max_instances_per_service)) return absl::OkStatus();
  return absl::ResourceExhaustedError(StrCat("service ", service, " already has the maximum of ",
                                             limits.max_instances_per_service, " instances"));
}

absl::Status CheckBytesLimit(const Limits& limits, std::string_view service, int64_t added,
                             int64_t service_bytes, int64_t total_bytes) {
  if (added <= 0) return absl::OkStatus();
  if (static_cast<uint64_t>(service_bytes + added) > limits.max_service_bytes) {
    return absl::ResourceExhaustedError(
        StrCat("service ", service, " would hold ", service_bytes + added,
               " bytes of instances, more than its limit of ", limits.max_service_bytes,
               " (max_service_bytes): deregister instances or make them smaller"));
  }
  if (static_cast<uint64_t>(total_bytes + added) > limits.max_catalog_bytes) {
    return absl::ResourceExhaustedError(
        StrCat("the registry would hold ", total_bytes + added,
               " bytes of instances, more than its limit of ", limits.max_catalog_bytes,
               " (max_catalog_bytes)"));
  }
  return absl::OkStatus();
}

}  // namespace muster
