// muster::etcd::InstanceStore: registering, renewing, removing and listing
// instances in etcd with Muster's layout (etcd/layout.h). The SDK's
// EtcdRegistry and musterd's cluster store both write through it, so both
// write the same way.
//
// Register reads the instance's key and decides with the registration
// decision (core/registration.h). The same registration again renews the
// lease and writes nothing. A changed one keeps the states of the checks it
// kept (Instance::AdoptCheckStates). A changed one is written by a transaction that
// compares the key's mod_revision with the one read (a new key: that it does
// not exist), so two writers of one instance never both win; the loser reads
// again. A registration under another version moves the instance: the same
// transaction deletes its old key. Each instance with a TTL has a lease of
// its own, reused while the TTL stays the same; a replaced lease is revoked.
//
// Heartbeat is one keep-alive of the instance's lease on the client's shared
// stream. The lease comes from a cache of what this store registered or found
// (no read), checked against etcd when the renewal fails.
//
// Deregister deletes the key and writes the deregistration marker in one
// transaction, then revokes the lease.
//
// A retried write whose first attempt was applied but not answered finds
// the change already made: Register then answers as for the same
// registration again, and Deregister answers NotFound.
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/mutex.h"
#include "etcd/client.h"
#include "etcd/layout.h"
#include "muster/instance.h"

namespace muster::etcd {

class InstanceStore {
 public:
  // `client` must outlive the store.
  InstanceStore(Client& client, Layout layout) : client_(client), layout_(std::move(layout)) {}

  struct Written {
    Instance instance;      // as stored, with its revisions
    bool created = false;   // a new instance
    bool changed = false;   // false: the same registration again (lease renewed only)
    uint64_t revision = 0;  // etcd's revision after the write (the read's, when unchanged)
  };

  // Registers or updates a validated instance (see above).
  absl::StatusOr<Written> Register(const Instance& instance, Deadline deadline);

  // Removes the instance; answers its last state and the revision of the
  // removal. NotFound when it is not registered.
  absl::StatusOr<Written> Deregister(const InstanceKey& key, Deadline deadline);

  // A leader's fencing token: the write happens only while `key` (the
  // election's) still has create_revision `term`.
  struct Fence {
    std::string key;
    int64_t term = 0;
  };
  // Records a new state of one active check (core/checks.h), keeping the
  // key's lease; fenced by `fence`. NotFound when the instance or the check
  // (with that spec) is gone; FailedPrecondition when the fence no longer
  // holds; changed=false when the state was already stored.
  absl::StatusOr<Written> SetCheckState(const InstanceKey& key, const Check& check,
                                        const Fence& fence, Deadline deadline);

  // Renews the instance's lease and returns its TTL in seconds (0: it has no
  // lease). NotFound when it is not registered (any more).
  absl::StatusOr<int64_t> Heartbeat(const InstanceKey& key, Deadline deadline);

  struct Listed {
    uint64_t revision = 0;           // etcd's revision the answer reflects
    std::vector<Instance> instances;  // sorted by id
  };
  // Every instance under `prefix` (a service's or a version's prefix, or all
  // of ServicesPrefix()). Keys and values that are not Muster's are skipped.
  absl::StatusOr<Listed> List(const std::string& prefix, Deadline deadline);

  const Layout& layout() const { return layout_; }

  // Drops what the store remembers of an instance (its key and lease), e.g.
  // once a watch saw it expire.
  void Forget(const InstanceKey& key) ABSL_LOCKS_EXCLUDED(known_mu_);

 private:
  struct Known {
    std::string key;  // the instance's etcd key
    int64_t lease = 0;
  };

  absl::StatusOr<Written> RegisterOver(const Instance& instance, const std::string& key,
                                       const mvccpb::KeyValue& kv, Deadline deadline);
  absl::StatusOr<Written> RegisterNew(const Instance& instance, const std::string& key,
                                      Deadline deadline);
  // The key of instance `key.id` under any version of its service, if any.
  absl::StatusOr<std::optional<mvccpb::KeyValue>> FindAnyVersion(const InstanceKey& key,
                                                                 bool keys_only, Deadline deadline);
  // The instance's key (with its value unless keys_only): where this store
  // last saw it, else found by a scan of its service. NotFound when absent.
  absl::StatusOr<mvccpb::KeyValue> Locate(const InstanceKey& key, bool keys_only,
                                          Deadline deadline);

  void Remember(const InstanceKey& key, const std::string& etcd_key, int64_t lease)
      ABSL_LOCKS_EXCLUDED(known_mu_);
  std::optional<Known> Lookup(const InstanceKey& key) ABSL_LOCKS_EXCLUDED(known_mu_);

  Client& client_;
  const Layout layout_;

  Mutex known_mu_;
  // Where this store last saw each instance: key and lease.
  absl::flat_hash_map<InstanceKey, Known> known_ ABSL_GUARDED_BY(known_mu_);
};

// A Range of every key under `prefix`.
etcdserverpb::RangeRequest PrefixRange(const std::string& prefix, bool keys_only = false);

// The instances in a Range answer, sorted by id; what does not decode is skipped.
std::vector<Instance> DecodeInstances(const Layout& layout,
                                      const etcdserverpb::RangeResponse& range);

}  // namespace muster::etcd
