#include "etcd/layout.h"

#include <map>
#include <tuple>
#include <utility>

#include "core/json_codec.h"
#include "core/strings.h"

namespace muster::etcd {

Layout::Layout(std::string prefix) : prefix_(std::move(prefix)) {
  while (!prefix_.empty() && prefix_.back() == '/') prefix_.pop_back();
}

std::string Layout::ServicesPrefix() const { return StrCat(prefix_, "/services/"); }

std::string Layout::ServicePrefix(std::string_view ns, std::string_view service) const {
  return StrCat(prefix_, "/services/", ns, "/", service, "/");
}

std::string Layout::VersionPrefix(std::string_view ns, std::string_view service,
                                  std::string_view version) const {
  return StrCat(ServicePrefix(ns, service), version.empty() ? kNoVersion : version, "/");
}

std::string Layout::InstanceKey(const Instance& instance) const {
  return StrCat(VersionPrefix(instance.ns, instance.service, instance.version), instance.id);
}

std::string Layout::DeregisteredKey(std::string_view ns, std::string_view service) const {
  return StrCat(ServicePrefix(ns, service), kDeregisteredMarker);
}

std::optional<Layout::Parsed> Layout::Parse(std::string_view key) const {
  const std::string services = ServicesPrefix();
  if (!key.starts_with(services)) return std::nullopt;
  key.remove_prefix(services.size());
  std::vector<std::string_view> parts;
  while (true) {
    const size_t slash = key.find('/');
    parts.push_back(key.substr(0, slash));
    if (slash == std::string_view::npos) break;
    key.remove_prefix(slash + 1);
  }
  for (std::string_view part : parts) {
    if (part.empty()) return std::nullopt;
  }
  Parsed parsed;
  if (parts.size() == 3 && parts[2] == kDeregisteredMarker) {
    parsed.ns = parts[0];
    parsed.service = parts[1];
    parsed.marker = true;
    return parsed;
  }
  if (parts.size() != 4) return std::nullopt;
  parsed.ns = parts[0];
  parsed.service = parts[1];
  if (parts[2] != kNoVersion) parsed.version = parts[2];
  parsed.id = parts[3];
  return parsed;
}

std::string EncodeValue(const Instance& instance, uint64_t create_revision) {
  Instance stored = instance;
  stored.health = stored.WorstCheck();
  stored.create_revision = create_revision;
  stored.modify_revision = 0;
  return SerializeInstance(stored);
}

absl::StatusOr<Instance> DecodeInstance(const Layout& layout, const mvccpb::KeyValue& kv) {
  std::optional<Layout::Parsed> parsed = layout.Parse(kv.key());
  if (!parsed.has_value() || parsed->marker) {
    return absl::InvalidArgumentError(StrCat("etcd key ", kv.key(), " is not a Muster instance"));
  }
  absl::StatusOr<Instance> instance = ParseInstance(kv.value());
  if (!instance.ok()) {
    return absl::InvalidArgumentError(
        StrCat("etcd key ", kv.key(), " holds no Muster instance: ", instance.status().message()));
  }
  if (instance->ns != parsed->ns || instance->service != parsed->service ||
      instance->version != parsed->version || instance->id != parsed->id) {
    return absl::InvalidArgumentError(
        StrCat("etcd key ", kv.key(), " holds an instance of another key"));
  }
  if (instance->create_revision == 0) {
    instance->create_revision = static_cast<uint64_t>(kv.create_revision());
  }
  instance->modify_revision = static_cast<uint64_t>(kv.mod_revision());
  instance->health = instance->WorstCheck();
  return instance;
}

namespace {

// The instance a delete event removed: its last value, else what the key says.
std::optional<Instance> DeletedInstance(const Layout& layout, const mvccpb::Event& event) {
  if (event.has_prev_kv() && !event.prev_kv().key().empty()) {
    absl::StatusOr<Instance> previous = DecodeInstance(layout, event.prev_kv());
    if (previous.ok()) return *std::move(previous);
  }
  std::optional<Layout::Parsed> parsed = layout.Parse(event.kv().key());
  if (!parsed.has_value() || parsed->marker) return std::nullopt;
  Instance instance;
  instance.ns = parsed->ns;
  instance.service = parsed->service;
  instance.version = parsed->version;
  instance.id = parsed->id;
  return instance;
}

}  // namespace

std::vector<Change> ChangesFromEvents(const Layout& layout,
                                      const std::vector<mvccpb::Event>& events) {
  std::vector<Change> changes;
  size_t begin = 0;
  while (begin < events.size()) {
    // One revision's events: [begin, end).
    const int64_t revision = events[begin].kv().mod_revision();
    size_t end = begin;
    while (end < events.size() && events[end].kv().mod_revision() == revision) ++end;

    // (ns, service, id) -> the change; markers of this revision by service.
    std::map<std::tuple<std::string, std::string, std::string>, Change> by_instance;
    std::map<std::pair<std::string, std::string>, std::string> deregistered;
    std::vector<std::tuple<std::string, std::string, std::string>> order;
    for (size_t i = begin; i < end; ++i) {
      const mvccpb::Event& event = events[i];
      std::optional<Layout::Parsed> parsed = layout.Parse(event.kv().key());
      if (!parsed.has_value()) continue;
      if (parsed->marker) {
        if (event.type() == mvccpb::Event::PUT) {
          deregistered[{parsed->ns, parsed->service}] = event.kv().value();
        }
        continue;
      }
      auto id = std::make_tuple(parsed->ns, parsed->service, parsed->id);
      auto [it, first] = by_instance.try_emplace(id);
      if (first) order.push_back(id);
      Change& change = it->second;
      change.revision = static_cast<uint64_t>(revision);
      if (event.type() == mvccpb::Event::PUT) {
        absl::StatusOr<Instance> instance = DecodeInstance(layout, event.kv());
        if (!instance.ok()) continue;
        const bool moved = !first && change.type == ChangeType::kDeregistered;
        change.type = (moved || event.kv().version() > 1) ? ChangeType::kUpdated
                                                           : ChangeType::kRegistered;
        change.instance = *std::move(instance);
      } else {
        std::optional<Instance> instance = DeletedInstance(layout, event);
        if (!instance.has_value()) continue;
        if (!first && change.type != ChangeType::kDeregistered) {
          change.type = ChangeType::kUpdated;  // a put of the same instance came first
          continue;
        }
        // Provisional: a delete; decided below (kDeregistered or kExpired).
        change.type = ChangeType::kDeregistered;
        change.instance = *std::move(instance);
      }
    }
    for (const auto& id : order) {
      auto it = by_instance.find(id);
      Change& change = it->second;
      if (change.instance.id.empty()) continue;  // nothing decodable
      if (change.type == ChangeType::kDeregistered) {
        auto marker = deregistered.find({std::get<0>(id), std::get<1>(id)});
        if (marker == deregistered.end() || marker->second != std::get<2>(id)) {
          change.type = ChangeType::kExpired;
        }
      }
      changes.push_back(std::move(change));
    }
    begin = end;
  }
  return changes;
}

}  // namespace muster::etcd
