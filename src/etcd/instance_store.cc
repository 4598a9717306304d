#include "etcd/instance_store.h"

#include <algorithm>
#include <utility>

#include "core/checks.h"
#include "core/registration.h"
#include "core/strings.h"

namespace muster::etcd {
namespace {

// How often Register and Deregister read again after losing a race.
constexpr int kMaxConflicts = 16;

// The status a lost compare returns internally: read again.
absl::Status Conflict() { return absl::AbortedError("changed meanwhile"); }

etcdserverpb::Compare ModEquals(const std::string& key, int64_t mod_revision) {
  etcdserverpb::Compare compare;
  compare.set_key(key);
  compare.set_target(etcdserverpb::Compare::MOD);
  compare.set_result(etcdserverpb::Compare::EQUAL);
  compare.set_mod_revision(mod_revision);
  return compare;
}

etcdserverpb::Compare Absent(const std::string& key) {
  etcdserverpb::Compare compare;
  compare.set_key(key);
  compare.set_target(etcdserverpb::Compare::CREATE);
  compare.set_result(etcdserverpb::Compare::EQUAL);
  compare.set_create_revision(0);
  return compare;
}

void AddPut(etcdserverpb::TxnRequest& txn, std::string key, std::string value, int64_t lease) {
  etcdserverpb::PutRequest* put = txn.add_success()->mutable_request_put();
  put->set_key(std::move(key));
  put->set_value(std::move(value));
  put->set_lease(lease);
}

void AddDelete(etcdserverpb::TxnRequest& txn, std::string key) {
  txn.add_success()->mutable_request_delete_range()->set_key(std::move(key));
}

}  // namespace

etcdserverpb::RangeRequest PrefixRange(const std::string& prefix, bool keys_only) {
  etcdserverpb::RangeRequest range;
  range.set_key(prefix);
  range.set_range_end(PrefixEnd(prefix));
  range.set_keys_only(keys_only);
  return range;
}

std::vector<Instance> DecodeInstances(const Layout& layout,
                                      const etcdserverpb::RangeResponse& range) {
  std::vector<Instance> instances;
  instances.reserve(range.kvs_size());
  for (const mvccpb::KeyValue& kv : range.kvs()) {
    absl::StatusOr<Instance> instance = DecodeInstance(layout, kv);
    if (instance.ok()) instances.push_back(*std::move(instance));
  }
  std::sort(instances.begin(), instances.end(),
            [](const Instance& a, const Instance& b) { return a.id < b.id; });
  return instances;
}

absl::StatusOr<InstanceStore::Written> InstanceStore::Register(const Instance& instance,
                                                               Deadline deadline) {
  const std::string key = layout_.InstanceKey(instance);
  for (int conflict = 0; conflict < kMaxConflicts; ++conflict) {
    etcdserverpb::RangeRequest get;
    get.set_key(key);
    absl::StatusOr<etcdserverpb::RangeResponse> current = client_.Range(get, deadline);
    if (!current.ok()) return current.status();
    absl::StatusOr<Written> written =
        current->kvs().empty() ? RegisterNew(instance, key, deadline)
                               : RegisterOver(instance, key, current->kvs(0), deadline);
    if (written.ok()) {
      if (!written->changed) written->revision = static_cast<uint64_t>(current->header().revision());
      return written;
    }
    if (written.status().code() != absl::StatusCode::kAborted) return written.status();
  }
  return absl::AbortedError(
      StrCat("instance ", instance.id, " kept changing under this registration; try again"));
}

absl::StatusOr<InstanceStore::Written> InstanceStore::RegisterOver(const Instance& instance,
                                                                   const std::string& key,
                                                                   const mvccpb::KeyValue& kv,
                                                                   Deadline deadline) {
  absl::StatusOr<Instance> existing = DecodeInstance(layout_, kv);
  Registration decision = DecideRegistration(existing.ok() ? &*existing : nullptr, instance);
  if (decision.kind == RegistrationKind::kRenewOnly) {
    // The same registration: renew, write nothing.
    if (kv.lease() != 0) {
      absl::StatusOr<int64_t> ttl = client_.KeepAliveOnce(kv.lease(), deadline);
      if (!ttl.ok()) {
        // Expired this instant: the key goes with it; register anew.
        if (ttl.status().code() == absl::StatusCode::kNotFound) return Conflict();
        return ttl.status();
      }
    }
    Remember(KeyOf(instance), key, kv.lease());
    Written written;
    written.instance = *std::move(existing);
    return written;
  }
  Instance next = *std::move(decision.stored);
  const bool same_ttl = existing.ok() && existing->ttl_seconds == instance.ttl_seconds;
  int64_t lease = kv.lease();
  bool granted = false;
  if (instance.ttl_seconds == 0) {
    lease = 0;
  } else if (lease == 0 || !same_ttl) {
    absl::StatusOr<etcdserverpb::LeaseGrantResponse> grant =
        client_.LeaseGrant(instance.ttl_seconds, deadline);
    if (!grant.ok()) return grant.status();
    lease = grant->id();
    granted = true;
  }
  // A create_revision carried over from another version's key stays (an
  // unreadable value counts as created with its key).
  const uint64_t first_revision =
      existing.ok() ? next.create_revision : static_cast<uint64_t>(kv.create_revision());
  const bool carried = first_revision != static_cast<uint64_t>(kv.create_revision());
  etcdserverpb::TxnRequest txn;
  *txn.add_compare() = ModEquals(key, kv.mod_revision());
  AddPut(txn, key, EncodeValue(next, carried ? first_revision : 0), lease);
  absl::StatusOr<etcdserverpb::TxnResponse> done = client_.Txn(txn, deadline);
  if (!done.ok() || !done->succeeded()) {
    if (granted) (void)client_.LeaseRevoke(lease, deadline);
    if (!done.ok()) return done.status();
    return Conflict();
  }
  if (kv.lease() != 0 && kv.lease() != lease) {
    (void)client_.LeaseRevoke(kv.lease(), deadline);
  } else if (lease != 0) {
    (void)client_.KeepAliveOnce(lease, deadline);  // a registration renews
  }
  Remember(KeyOf(instance), key, lease);
  Written written;
  written.revision = static_cast<uint64_t>(done->header().revision());
  written.instance = std::move(next);
  written.instance.create_revision = first_revision;
  written.instance.modify_revision = written.revision;
  written.changed = true;
  return written;
}

absl::StatusOr<InstanceStore::Written> InstanceStore::RegisterNew(const Instance& instance,
                                                                  const std::string& key,
                                                                  Deadline deadline) {
  // Under another version? Then this registration moves it.
  absl::StatusOr<std::optional<mvccpb::KeyValue>> old =
      FindAnyVersion(KeyOf(instance), /*keys_only=*/false, deadline);
  if (!old.ok()) return old.status();
  absl::StatusOr<Instance> previous = absl::NotFoundError("");
  if (old->has_value()) previous = DecodeInstance(layout_, **old);
  // Nothing under this key, so never renew-only: a create, or (moved from
  // another version) an update that keeps its create_revision and states.
  Registration decision = DecideRegistration(previous.ok() ? &*previous : nullptr, instance);
  if (decision.kind == RegistrationKind::kRenewOnly) return Conflict();  // it is there after all
  const Instance& next = *decision.stored;
  const uint64_t first_revision = next.create_revision;
  int64_t lease = 0;
  if (instance.ttl_seconds > 0) {
    absl::StatusOr<etcdserverpb::LeaseGrantResponse> grant =
        client_.LeaseGrant(instance.ttl_seconds, deadline);
    if (!grant.ok()) return grant.status();
    lease = grant->id();
  }
  etcdserverpb::TxnRequest txn;
  *txn.add_compare() = Absent(key);
  if (old->has_value()) {
    *txn.add_compare() = ModEquals((*old)->key(), (*old)->mod_revision());
    AddDelete(txn, (*old)->key());
  }
  AddPut(txn, key, EncodeValue(next, first_revision), lease);
  absl::StatusOr<etcdserverpb::TxnResponse> done = client_.Txn(txn, deadline);
  if (!done.ok() || !done->succeeded()) {
    if (lease != 0) (void)client_.LeaseRevoke(lease, deadline);
    if (!done.ok()) return done.status();
    return Conflict();
  }
  if (old->has_value() && (*old)->lease() != 0) {
    (void)client_.LeaseRevoke((*old)->lease(), deadline);
  }
  Remember(KeyOf(instance), key, lease);
  Written written;
  written.revision = static_cast<uint64_t>(done->header().revision());
  decision.Stamp(written.revision);
  written.instance = *std::move(decision.stored);
  written.created = !old->has_value();
  written.changed = true;
  return written;
}

absl::StatusOr<InstanceStore::Written> InstanceStore::Deregister(const InstanceKey& key,
                                                                 Deadline deadline) {
  for (int conflict = 0; conflict < kMaxConflicts; ++conflict) {
    absl::StatusOr<mvccpb::KeyValue> kv = Locate(key, /*keys_only=*/false, deadline);
    if (!kv.ok()) return kv.status();
    etcdserverpb::TxnRequest txn;
    *txn.add_compare() = ModEquals(kv->key(), kv->mod_revision());
    AddDelete(txn, kv->key());
    AddPut(txn, layout_.DeregisteredKey(key.ns, key.service), key.id, 0);
    absl::StatusOr<etcdserverpb::TxnResponse> done = client_.Txn(txn, deadline);
    if (!done.ok()) return done.status();
    if (!done->succeeded()) continue;  // changed meanwhile: look again
    Forget(key);
    if (kv->lease() != 0) (void)client_.LeaseRevoke(kv->lease(), deadline);
    Written written;
    absl::StatusOr<Instance> last = DecodeInstance(layout_, *kv);
    if (last.ok()) {
      written.instance = *std::move(last);
    } else {
      written.instance.ns = key.ns;
      written.instance.service = key.service;
      written.instance.id = key.id;
    }
    written.revision = static_cast<uint64_t>(done->header().revision());
    written.changed = true;
    return written;
  }
  return absl::AbortedError(StrCat("instance ", key.id, " kept changing; try again"));
}

absl::StatusOr<InstanceStore::Written> InstanceStore::SetCheckState(const InstanceKey& key,
                                                                    const Check& check,
                                                                    const Fence& fence,
                                                                    Deadline deadline) {
  for (int conflict = 0; conflict < kMaxConflicts; ++conflict) {
    absl::StatusOr<mvccpb::KeyValue> kv = Locate(key, /*keys_only=*/false, deadline);
    if (!kv.ok()) return kv.status();
    absl::StatusOr<Instance> current = DecodeInstance(layout_, *kv);
    if (!current.ok()) return NotRegisteredError(key);
    absl::StatusOr<Instance> next = WithCheckState(*current, check);
    if (!next.ok()) return next.status();
    Written written;
    const Check* before = current->FindCheck(check.id);
    if (before->status == check.status && before->output == check.output) {
      written.instance = *std::move(current);
      return written;
    }
    // The term is the election key's create_revision: a deposed leader's
    // write fails here, whatever it still believes.
    etcdserverpb::TxnRequest txn;
    *txn.add_compare() = ModEquals(kv->key(), kv->mod_revision());
    etcdserverpb::Compare* term = txn.add_compare();
    term->set_key(fence.key);
    term->set_target(etcdserverpb::Compare::CREATE);
    term->set_result(etcdserverpb::Compare::EQUAL);
    term->set_create_revision(fence.term);
    const bool carried = current->create_revision != static_cast<uint64_t>(kv->create_revision());
    AddPut(txn, kv->key(), EncodeValue(*next, carried ? current->create_revision : 0), kv->lease());
    // On failure, read the election key to tell a lost term from a race.
    txn.add_failure()->mutable_request_range()->set_key(fence.key);
    absl::StatusOr<etcdserverpb::TxnResponse> done = client_.Txn(txn, deadline);
    if (!done.ok()) return done.status();
    if (!done->succeeded()) {
      const auto& range = done->responses(0).response_range();
      if (range.kvs().empty() || range.kvs(0).create_revision() != fence.term) {
        return absl::FailedPreconditionError(
            StrCat("term ", fence.term, " is over: this node no longer leads the cluster"));
      }
      continue;  // the instance changed meanwhile: look again
    }
    written.instance = *std::move(next);
    written.revision = static_cast<uint64_t>(done->header().revision());
    written.instance.modify_revision = written.revision;
    written.changed = true;
    return written;
  }
  return absl::AbortedError(StrCat("instance ", key.id, " kept changing; try again"));
}

absl::StatusOr<int64_t> InstanceStore::Heartbeat(const InstanceKey& key, Deadline deadline) {
  // Fast path: renew the lease this store knows; nothing else is read.
  if (std::optional<Known> known = Lookup(key); known.has_value() && known->lease != 0) {
    absl::StatusOr<int64_t> ttl = client_.KeepAliveOnce(known->lease, deadline);
    if (ttl.ok() || ttl.status().code() != absl::StatusCode::kNotFound) return ttl;
    Forget(key);  // the lease is gone; the instance may have another now
  }
  absl::StatusOr<mvccpb::KeyValue> kv = Locate(key, /*keys_only=*/true, deadline);
  if (!kv.ok()) return kv.status();
  if (kv->lease() == 0) return 0;  // registered without a TTL
  absl::StatusOr<int64_t> ttl = client_.KeepAliveOnce(kv->lease(), deadline);
  if (ttl.ok()) {
    Remember(key, kv->key(), kv->lease());
    return ttl;
  }
  if (ttl.status().code() == absl::StatusCode::kNotFound) {
    Forget(key);
    return NotRegisteredError(key);  // it expired a moment ago
  }
  return ttl.status();
}

absl::StatusOr<InstanceStore::Listed> InstanceStore::List(const std::string& prefix,
                                                          Deadline deadline) {
  absl::StatusOr<etcdserverpb::RangeResponse> range = client_.Range(PrefixRange(prefix), deadline);
  if (!range.ok()) return range.status();
  Listed listed;
  listed.revision = static_cast<uint64_t>(range->header().revision());
  listed.instances = DecodeInstances(layout_, *range);
  return listed;
}

absl::StatusOr<std::optional<mvccpb::KeyValue>> InstanceStore::FindAnyVersion(
    const InstanceKey& key, bool keys_only, Deadline deadline) {
  absl::StatusOr<etcdserverpb::RangeResponse> range =
      client_.Range(PrefixRange(layout_.ServicePrefix(key.ns, key.service), keys_only), deadline);
  if (!range.ok()) return range.status();
  for (const mvccpb::KeyValue& kv : range->kvs()) {
    std::optional<Layout::Parsed> parsed = layout_.Parse(kv.key());
    if (parsed.has_value() && !parsed->marker && parsed->id == key.id) return kv;
  }
  return std::optional<mvccpb::KeyValue>();
}

absl::StatusOr<mvccpb::KeyValue> InstanceStore::Locate(const InstanceKey& key, bool keys_only,
                                                       Deadline deadline) {
  if (std::optional<Known> known = Lookup(key); known.has_value()) {
    etcdserverpb::RangeRequest get;
    get.set_key(known->key);
    get.set_keys_only(keys_only);
    absl::StatusOr<etcdserverpb::RangeResponse> range = client_.Range(get, deadline);
    if (!range.ok()) return range.status();
    if (!range->kvs().empty()) return range->kvs(0);
    Forget(key);
  }
  absl::StatusOr<std::optional<mvccpb::KeyValue>> found = FindAnyVersion(key, keys_only, deadline);
  if (!found.ok()) return found.status();
  if (!found->has_value()) return NotRegisteredError(key);
  return **found;
}

void InstanceStore::Remember(const InstanceKey& key, const std::string& etcd_key, int64_t lease) {
  MutexLock lock(known_mu_);
  known_[key] = Known{etcd_key, lease};
}

void InstanceStore::Forget(const InstanceKey& key) {
  MutexLock lock(known_mu_);
  known_.erase(key);
}

std::optional<InstanceStore::Known> InstanceStore::Lookup(const InstanceKey& key) {
  MutexLock lock(known_mu_);
  auto it = known_.find(key);
  if (it == known_.end()) return std::nullopt;
  return it->second;
}

}  // namespace muster::etcd
