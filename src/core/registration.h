// The registration decision, shared by every place an instance is registered:
// musterd's embedded catalog, the etcd instance store (musterd's cluster mode
// and the SDK's etcd backend) and the SDK's memory backend.
//
// A registration of an instance that is not stored creates it. One that
// repeats the stored spec (Instance::SameSpec) changes nothing and only
// renews the lease: no new revision, no event. Any other one updates it: the
// checks it kept keep their states (Instance::AdoptCheckStates), and it keeps
// the stored instance's create_revision.
//
// The decision is a pure function of the two instances, so each writer keeps
// its own way of storing: the catalog checks its limits on the decided
// instance and assigns the revision itself; the etcd store writes it in a
// transaction and learns the revision from etcd's answer. Either way the
// writer stamps the revision it got with Registration::Stamp.
//
// Example:
//   Registration r = DecideRegistration(current, std::move(incoming));
//   if (r.kind == RegistrationKind::kRenewOnly) { renew the lease; return current; }
//   (check limits on *r.stored)
//   r.Stamp(++revision);
//   store(*r.stored);
#pragma once

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "muster/instance.h"

namespace muster {

enum class RegistrationKind {
  kCreate,     // nothing is stored under the key: store a new instance
  kUpdate,     // the spec changed: replace the stored instance
  kRenewOnly,  // the same spec again: store nothing, renew the lease
};

struct Registration {
  RegistrationKind kind = RegistrationKind::kCreate;
  // kCreate, kUpdate: the instance to store, with check states and health set
  // and (kUpdate) the current create_revision; its revisions are completed by
  // Stamp. kRenewOnly: empty, the current instance stays as it is.
  std::optional<Instance> stored;

  // Sets the revisions of `stored` for a write at `revision`: modify_revision,
  // and for a new instance create_revision too. No-op for kRenewOnly.
  void Stamp(uint64_t revision);
};

// Decides what registering `incoming` (validated) does when `current` is
// stored under its key (null: nothing is).
Registration DecideRegistration(const Instance* current, Instance incoming);

// NotFound for an instance that is not stored (never registered, or gone:
// deregistered, expired): "instance ID of service SERVICE is not registered",
// plus " in namespace NS" outside the default namespace. Every writer says it
// the same way, so a client reads one message whichever backend answered.
absl::Status NotRegisteredError(const InstanceKey& key);

}  // namespace muster
