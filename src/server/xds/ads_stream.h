// One ADS stream of musterd's xDS server (xds_server.h), and what all the
// streams of one server share. Private to src/server/xds/.
//
// A stream follows, per resource type, the names its client last asked for.
// It answers a request whose names changed (or the first of a type) with
// every resource of that type it follows, and, for EDS, a change of a
// followed service with that service's assignments only (state of the world
// lets EDS send a part). ACKs and NACKs are matched to the nonce of the last
// response of the type; a request with an older nonce is ignored, as the
// protocol says. One response is written at a time; what changes meanwhile
// is sent, coalesced, when the write is done.
//
// Locks, in the order they may be taken: AdsStream::mu_, then the catalog's
// and the watch hub's own. Hub notifications never take a stream's lock: they
// queue the stream with the Pusher (a leaf lock), whose thread then takes it.
// gRPC calls (StartRead, StartWrite, Finish) are made with no lock held, as
// gRPC may run a reaction inline.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "catalog/catalog_view.h"
#include "catalog/watch_hub.h"
#include "core/mutex.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "server/xds/xds_resources.h"
#include "server/xds/xds_server.h"

namespace muster::xds {

class AdsStream;

// Runs the pushes that hub notifications ask for, on a thread of its own.
class Pusher {
 public:
  Pusher();
  ~Pusher();  // stops and joins
  Pusher(const Pusher&) = delete;
  Pusher& operator=(const Pusher&) = delete;

  // Queues `stream` to learn that service `key` (ns/service) changed. Quick;
  // takes only the pusher's lock.
  void Enqueue(std::weak_ptr<AdsStream> stream, std::string key);
  void Stop();

 private:
  void Loop();

  Mutex mu_;
  CondVar wake_;
  std::deque<std::pair<std::weak_ptr<AdsStream>, std::string>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // started last
};

// What the streams of one server share.
class XdsShared {
 public:
  XdsShared(XdsOptions xds_options, CatalogView& view)
      : options(std::move(xds_options)), catalog(view) {}

  const XdsOptions options;
  CatalogView& catalog;
  // Shared with every hub subscription's callback: the hub may still be
  // calling one (it calls them outside its lock) after the stream
  // unsubscribed and the server is gone, and Enqueue after Stop is a no-op.
  const std::shared_ptr<Pusher> pusher = std::make_shared<Pusher>();

  struct Counters {
    std::atomic<uint64_t> streams{0};
    std::atomic<uint64_t> streams_total{0};
    std::atomic<uint64_t> streams_refused{0};
    std::atomic<uint64_t> requests{0};
    std::atomic<uint64_t> responses{0};
    std::atomic<uint64_t> acks{0};
    std::atomic<uint64_t> nacks{0};
  } counters;

  // The assignment of resource `name` (target `target`) now: the one built
  // at the service's current revision when there is one, else built anew.
  std::shared_ptr<const google::protobuf::Any> Endpoints(const std::string& name,
                                                         const Target& target);

 private:
  struct Built {
    uint64_t service_revision = 0;
    std::shared_ptr<const google::protobuf::Any> resource;
  };
  Mutex cache_mu_;
  // By resource name; an entry is dropped once no stream asked for it for a
  // while (bounded: see Endpoints).
  absl::flat_hash_map<std::string, Built> cache_ ABSL_GUARDED_BY(cache_mu_);
};

class AdsStream
    : public grpc::ServerBidiReactor<envoy::service::discovery::v3::DiscoveryRequest,
                                     envoy::service::discovery::v3::DiscoveryResponse>,
      public std::enable_shared_from_this<AdsStream> {
 public:
  // Starts a stream: the returned reactor owns itself until gRPC calls
  // OnDone. With `refuse`, it finishes at once with that status.
  static AdsStream* Open(XdsShared& shared, std::string peer, const grpc::Status* refuse);

  // From the Pusher: the service `key` changed.
  void ServiceChanged(const std::string& key) ABSL_LOCKS_EXCLUDED(mu_);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

  // Use Open.
  AdsStream(XdsShared& shared, std::string peer);

 private:
  using Request = envoy::service::discovery::v3::DiscoveryRequest;
  using Response = envoy::service::discovery::v3::DiscoveryResponse;

  struct TypeState {
    std::set<std::string> names;  // followed
    uint64_t version = 0;         // of the last response sent
    std::string nonce;            // of the last response sent
    bool full = false;            // every followed resource must be sent
  };
  // One hub subscription per followed service, for the EDS names on it.
  struct Watched {
    WatchHub::SubscriptionId subscription = 0;
    std::set<std::string> names;
  };

  // What to do once the lock is released.
  struct After {
    bool write = false;
    bool finish = false;
    grpc::Status status;
  };

  // Takes a request: ACK or NACK, and the names followed.
  void Handle(const Request& request) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Follow(ResourceType type, std::set<std::string> names) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WatchEndpoints(const std::set<std::string>& names) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Builds the next response into response_ when one is due and no write is
  // in flight; true when it did (the caller then writes it).
  bool NextResponseLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Finish is due once the stream ended and no write is in flight.
  bool FinishDueLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Run(const After& after) ABSL_LOCKS_EXCLUDED(mu_);

  XdsShared& shared_;
  const std::string peer_;
  bool counted_ = false;  // set by Open before any reaction: counted in streams

  Mutex mu_;
  std::shared_ptr<AdsStream> self_ ABSL_GUARDED_BY(mu_);  // until OnDone
  std::string node_ ABSL_GUARDED_BY(mu_);                 // the client's node id
  std::array<TypeState, kResourceTypes> types_ ABSL_GUARDED_BY(mu_);
  // EDS names whose service changed since they were last sent.
  std::set<std::string> dirty_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Watched> watched_ ABSL_GUARDED_BY(mu_);
  // Names already logged as refused, so that each is logged once.
  std::set<std::string> refused_ ABSL_GUARDED_BY(mu_);
  uint64_t nonce_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;     // read failed or cancelled
  bool finished_ ABSL_GUARDED_BY(mu_) = false;  // Finish called
  grpc::Status end_status_ ABSL_GUARDED_BY(mu_);
  // Read by gRPC between StartRead and OnReadDone, and written between
  // StartWrite and OnWriteDone; ours otherwise.
  Request request_;
  Response response_;
};

}  // namespace muster::xds
