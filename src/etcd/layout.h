// How Muster keeps its catalog in etcd: keys, values and what watch events
// mean. Shared by the SDK's EtcdRegistry and musterd's cluster store, so that
// both read and write the same layout.
//
// Keys, under a prefix (default "/muster"):
//   {prefix}/services/{namespace}/{service}/{version}/{id}
//       the instance as JSON, bound to the instance's etcd lease (none when
//       its ttl_seconds is 0). {version} is "~" when the instance has none
//       (names never contain "~").
//   {prefix}/services/{namespace}/{service}/!deregistered
//       the id of the instance deregistered last. A deregistration deletes the
//       instance's key and writes this marker in one transaction, so a watcher
//       sees both in one revision and tells a deregistration from an expiry (a
//       lease that lapsed deletes the key alone).
//
// Values: the instance's JSON (core/json_codec.h) with health and
// modify_revision 0. create_revision is 0 too, except after the instance
// moved to another version, which moves it to another key: then it keeps the
// revision of the first registration. Revisions otherwise come from etcd's
// key metadata: create_revision and mod_revision of the key.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "kv.pb.h"
#include "muster/change.h"
#include "muster/instance.h"

namespace muster::etcd {

inline constexpr std::string_view kDefaultPrefix = "/muster";
inline constexpr std::string_view kNoVersion = "~";
inline constexpr std::string_view kDeregisteredMarker = "!deregistered";

class Layout {
 public:
  // `prefix` without a trailing '/'; "" is allowed (keys start at "/services").
  explicit Layout(std::string prefix = std::string(kDefaultPrefix));

  // {prefix}/services/
  std::string ServicesPrefix() const;
  // {prefix}/services/{ns}/{service}/
  std::string ServicePrefix(std::string_view ns, std::string_view service) const;
  // {prefix}/services/{ns}/{service}/{version or ~}/
  std::string VersionPrefix(std::string_view ns, std::string_view service,
                            std::string_view version) const;
  std::string InstanceKey(const Instance& instance) const;
  std::string DeregisteredKey(std::string_view ns, std::string_view service) const;

  struct Parsed {
    std::string ns;
    std::string service;
    std::string version;  // "" for "~"
    std::string id;       // "" for the deregistration marker
    bool marker = false;
  };
  // What a key under ServicesPrefix() is; nullopt for anything else.
  std::optional<Parsed> Parse(std::string_view key) const;

  const std::string& prefix() const { return prefix_; }

 private:
  std::string prefix_;
};

// The value stored for `instance`. `create_revision`: the revision of its
// first registration when it moves to another version's key, else 0.
std::string EncodeValue(const Instance& instance, uint64_t create_revision = 0);

// The instance stored in `kv` (a key of an instance, not the marker), with
// its revisions. InvalidArgument when the key or the value is not Muster's.
absl::StatusOr<Instance> DecodeInstance(const Layout& layout, const mvccpb::KeyValue& kv);

// What a batch of watch events (of one or more revisions, oldest first)
// changed, one Change per instance and revision, in revision order:
// - a put of a new key: kRegistered; of an existing key: kUpdated;
// - a delete and a put of the same instance in one revision (a move to
//   another version): kUpdated;
// - a delete with a deregistration marker naming the instance in the same
//   revision: kDeregistered; without one (a lapsed lease, or a delete by
//   another etcd client): kExpired. The instance is the deleted one, taken
//   from the event's prev_kv (or rebuilt from the key when etcd no longer
//   had it).
// Keys that are not Muster's and values that do not decode are skipped.
std::vector<Change> ChangesFromEvents(const Layout& layout,
                                      const std::vector<mvccpb::Event>& events);

}  // namespace muster::etcd
