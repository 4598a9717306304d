// What one subscription of a service sees when it follows only some of its
// instances (one version, some tags): the registry's changes to the service,
// turned into the changes to the set of instances matching the query. Shared
// by the registry backends so that every backend filters subscriptions the
// same way.
//
// With a filter, an instance that moves into it (an update that changes its
// version to the one followed, or adds the tags asked for) arrives as
// kRegistered, and one that moves out as kDeregistered whose `instance` is its
// new state (showing the version or tags it moved to). Changes to instances
// outside the filter are not seen. Without one every change passes unchanged.
//
// Not thread-safe: one per subscription, used by the thread that feeds it.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "client/service_query.h"
#include "muster/instance.h"
#include "muster/registry.h"

namespace muster::client {

class SubscriptionView {
 public:
  explicit SubscriptionView(const ServiceQuery& query) : query_(query) {}

  // Whether `instance` belongs to the subscription (version and tags).
  bool Matches(const Instance& instance) const { return QueryMatches(query_, instance); }

  // Starts over from a snapshot (the instances matching the query).
  void Reset(const std::vector<Instance>& snapshot);

  // The change the subscriber sees for a change to the service, or nullopt
  // when it does not concern the subscription.
  std::optional<Change> Apply(const Change& change);

 private:
  bool filtered() const { return !query_.version.empty() || !query_.tags.empty(); }

  const ServiceQuery query_;
  std::set<std::string> ids_;  // ids of the matching instances; kept only when filtered()
};

}  // namespace muster::client
