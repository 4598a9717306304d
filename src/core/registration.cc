#include "core/registration.h"

#include <string>
#include <utility>

#include "core/strings.h"

namespace muster {

Registration DecideRegistration(const Instance* current, Instance incoming) {
  Registration r;
  if (current != nullptr && current->SameSpec(incoming)) {
    r.kind = RegistrationKind::kRenewOnly;
    return r;
  }
  r.kind = current != nullptr ? RegistrationKind::kUpdate : RegistrationKind::kCreate;
  incoming.AdoptCheckStates(current);
  // Revisions are the registry's, whatever the registration carried.
  incoming.create_revision = current != nullptr ? current->create_revision : 0;
  incoming.modify_revision = 0;
  r.stored = std::move(incoming);
  return r;
}

void Registration::Stamp(uint64_t revision) {
  if (!stored.has_value()) return;
  stored->modify_revision = revision;
  if (kind == RegistrationKind::kCreate) stored->create_revision = revision;
}

absl::Status NotRegisteredError(const InstanceKey& key) {
  std::string message = StrCat("instance ", key.id, " of service ", key.service);
  if (key.ns != kDefaultNamespace) StrAppend(&message, " in namespace ", key.ns);
  message += " is not registered";
  return absl::NotFoundError(message);
}

}  // namespace muster
