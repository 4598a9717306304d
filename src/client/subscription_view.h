// What one subscription of a service sees when it follows only one version:
// the registry's changes to the service, turned into the changes to the set
// of instances matching the query. Shared by the registry backends so that
// every backend filters subscriptions the same way.
//
// With a version set, an instance that moves into the version (an update that
// changes its version to the one followed) arrives as kRegistered, and one
// that moves out as kDeregistered whose `instance` is its new state (showing
// the version it moved to). Changes to instances of other versions are not
// seen. Without a version every change passes unchanged.
//
// Not thread-safe: one per subscription, used by the thread that feeds it.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "muster/instance.h"
#include "muster/registry.h"

namespace muster::client {

class SubscriptionView {
 public:
  explicit SubscriptionView(std::string version) : version_(std::move(version)) {}

  // Whether `instance` belongs to the subscription's version.
  bool Matches(const Instance& instance) const {
    return version_.empty() || instance.version == version_;
  }

  // Starts over from a snapshot (the instances matching the query).
  void Reset(const std::vector<Instance>& snapshot);

  // The change the subscriber sees for a change to the service, or nullopt
  // when it does not concern the subscription.
  std::optional<Change> Apply(const Change& change);

 private:
  const std::string version_;
  std::set<std::string> ids_;  // ids of the matching instances; kept only with a version
};

}  // namespace muster::client
