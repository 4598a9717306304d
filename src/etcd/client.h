// muster::etcd::Client: a connection to an etcd cluster over its v3 gRPC API,
// shared by the SDK's EtcdRegistry and musterd's cluster store.
//
// What it adds to the generated stubs:
// - Endpoints and failover. One gRPC channel per endpoint; calls go to the
//   current one, and a call that fails with UNAVAILABLE (member down, no
//   leader) moves the client to the next endpoint and is retried there, up to
//   max_retries times, retry_interval apart, within the call's deadline. Each
//   attempt gets a share of the deadline (at least 1 s): a member cut off from
//   its leader holds a write for etcd's request timeout (about 6 s), and an
//   attempt that runs out of its share is retried on the next member at once.
// - Authentication. With a username, the client calls Auth.Authenticate and
//   sends the token with every call; a call refused for an expired or invalid
//   token authenticates again and is retried once.
// - TLS (CA, client certificate and key) and HTTP/2 keep-alive pings.
// - Lease keep-alive. KeepAliveOnce renews a lease through one long-lived
//   LeaseKeepAlive stream shared by every caller, as etcd's own client does,
//   instead of a stream per renewal.
// - Errors as absl::Status with gRPC's code (the numbering is the same) and
//   the call named in the message.
//
// Retries: etcd applies a write once it is committed, so a write retried after
// a lost answer may apply twice. Callers make writes safe to repeat (the SDK's
// are transactions guarded by a revision compare).
//
// Thread-safe. Example:
//   muster::etcd::ClientOptions options;
//   options.endpoints = {"127.0.0.1:2379"};
//   auto client = muster::etcd::Client::Connect(options);
//   etcdserverpb::RangeRequest range;
//   range.set_key("/muster/");
//   range.set_range_end(muster::etcd::PrefixEnd("/muster/"));
//   auto answer = (*client)->Range(range, muster::etcd::DeadlineIn(std::chrono::seconds(2)));
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/mutex.h"
#include "rpc.grpc.pb.h"
#include "rpc.pb.h"

namespace muster::etcd {

using Deadline = std::chrono::system_clock::time_point;

inline Deadline DeadlineIn(std::chrono::milliseconds timeout) {
  return std::chrono::system_clock::now() + timeout;
}

// The end of the range of every key that starts with `prefix`: the prefix
// with its last byte below 0xff incremented (and what follows dropped); "\0"
// (every key) when there is none.
std::string PrefixEnd(std::string_view prefix);

struct ClientOptions {
  // host:port of etcd members, or URLs http://host:port and https://host:port
  // (https turns TLS on).
  std::vector<std::string> endpoints;
  // How long Connect waits for the first member to answer.
  std::chrono::milliseconds dial_timeout{5000};
  // etcd authentication; empty username: none.
  std::string username;
  std::string password;
  // TLS. On when `tls` is set, an endpoint is https://, or any file is given.
  // ca_file: PEM roots to trust (empty: the system's). cert_file and key_file:
  // the client certificate, for etcd's --client-cert-auth.
  bool tls = false;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  // HTTP/2 pings on an idle connection, so that a dead member is noticed even
  // while only watches are open. etcd refuses pings more often than every 5 s
  // by default. 0: no pings.
  std::chrono::milliseconds keepalive_interval{30000};
  std::chrono::milliseconds keepalive_timeout{10000};
  // Retries of a call that found its member unavailable, each on the next
  // endpoint, `retry_interval` apart.
  int max_retries = 3;
  std::chrono::milliseconds retry_interval{200};
};

// The status for a gRPC failure of `what` (e.g. "Range").
absl::Status FromGrpc(const grpc::Status& status, std::string_view what);

class Client {
 public:
  // Builds channels to every endpoint and waits up to dial_timeout until one
  // member answers (and, with a username, authenticates). InvalidArgument for
  // bad options, Unavailable when no member answered, Unauthenticated or
  // PermissionDenied for bad credentials.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(ClientOptions options);

  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  absl::StatusOr<etcdserverpb::RangeResponse> Range(const etcdserverpb::RangeRequest& request,
                                                    Deadline deadline);
  absl::StatusOr<etcdserverpb::PutResponse> Put(const etcdserverpb::PutRequest& request,
                                                Deadline deadline);
  absl::StatusOr<etcdserverpb::DeleteRangeResponse> DeleteRange(
      const etcdserverpb::DeleteRangeRequest& request, Deadline deadline);
  absl::StatusOr<etcdserverpb::TxnResponse> Txn(const etcdserverpb::TxnRequest& request,
                                                Deadline deadline);

  // A new lease of `ttl_seconds` (etcd may raise it to its minimum).
  absl::StatusOr<etcdserverpb::LeaseGrantResponse> LeaseGrant(int64_t ttl_seconds,
                                                              Deadline deadline);
  // Revokes a lease and deletes its keys. NotFound when it does not exist.
  absl::Status LeaseRevoke(int64_t lease, Deadline deadline);
  // Renews a lease once through the shared keep-alive stream and returns its
  // TTL in seconds from now. NotFound when the lease has expired or was revoked.
  absl::StatusOr<int64_t> KeepAliveOnce(int64_t lease, Deadline deadline);
  absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> LeaseTimeToLive(int64_t lease,
                                                                        Deadline deadline);

  // The status of the member the client currently talks to.
  absl::StatusOr<etcdserverpb::StatusResponse> Status(Deadline deadline);

  // For streams (Watcher): the current endpoint's stub and a context prepared
  // with the auth token and etcd's "require leader" flag, so that a member cut
  // off from the leader ends the stream instead of leaving it silent.
  struct StreamTarget {
    size_t endpoint = 0;
    etcdserverpb::Watch::Stub* watch = nullptr;
  };
  StreamTarget CurrentStream(grpc::ClientContext& context);
  // Reports that a stream on `endpoint` failed with `status`: moves to the
  // next endpoint when the member looks unavailable, re-authenticates when
  // the token was refused.
  void StreamFailed(size_t endpoint, const grpc::Status& status);

  const ClientOptions& options() const { return options_; }

 private:
  struct Endpoint {
    std::string address;  // host:port
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<etcdserverpb::KV::Stub> kv;
    std::unique_ptr<etcdserverpb::Lease::Stub> lease;
    std::unique_ptr<etcdserverpb::Watch::Stub> watch;
    std::unique_ptr<etcdserverpb::Maintenance::Stub> maintenance;
    std::unique_ptr<etcdserverpb::Auth::Stub> auth;
  };

  // The shared LeaseKeepAlive stream and the renewals waiting for an answer.
  struct KeepAliveStream;

  explicit Client(ClientOptions options);
  absl::Status Init();

  // Runs `call(endpoint, context, response)` on the current endpoint, with
  // failover, retries and re-authentication as described above.
  template <typename Response, typename Call>
  absl::StatusOr<Response> Invoke(std::string_view what, Deadline deadline, Call call);

  // The deadline of attempt `attempt` (0-based) of a call due by `deadline`:
  // an equal share of the time left among the attempts left, at least
  // kMinAttemptTime; the last attempt gets all that is left.
  Deadline AttemptDeadline(Deadline deadline, int attempt) const;
  static constexpr std::chrono::milliseconds kMinAttemptTime{1000};

  void PrepareContext(grpc::ClientContext& context, Deadline deadline);
  // Moves to the endpoint after `failed` unless another caller already did.
  void Rotate(size_t failed);
  // Calls Authenticate on `endpoint` and stores the token.
  absl::Status Authenticate(Endpoint& endpoint, Deadline deadline);
  // Whether `status` says the token was not accepted.
  static bool IsTokenRejected(const grpc::Status& status);

  // The keep-alive stream, opened on first use or after it broke.
  absl::StatusOr<std::shared_ptr<KeepAliveStream>> KeepAliveStreamFor(Deadline deadline);
  void KeepAliveReader(std::shared_ptr<KeepAliveStream> stream);

  const ClientOptions options_;
  std::vector<Endpoint> endpoints_;  // fixed after Init
  std::atomic<size_t> current_{0};   // index into endpoints_

  mutable Mutex token_mu_;
  std::string token_ ABSL_GUARDED_BY(token_mu_);

  Mutex keepalive_mu_;
  std::shared_ptr<KeepAliveStream> keepalive_ ABSL_GUARDED_BY(keepalive_mu_);
  // Reader thread of the newest stream. A stream's reader ends once the
  // stream broke; it is joined when the next stream opens, or at destruction.
  std::thread keepalive_reader_ ABSL_GUARDED_BY(keepalive_mu_);
};

}  // namespace muster::etcd
