// muster::GrpcChannelPool: gRPC by service name. It keeps one grpc::Channel
// per instance of the services it is asked about (by address and
// credentials), and runs each call on an instance picked by the service's
// Balancer through Discovery, retrying on another instance and ejecting
// instances that keep failing, with muster::Caller's policy.
//
// Part of the library target muster_grpc (muster::muster_grpc), apart from
// libmuster so that its headers and <grpcpp/...> stay out of programs that
// do not use gRPC; <muster/muster.h> does not include this header.
//
// Example:
//   muster::DiscoveryOptions discovery_options;
//   discovery_options.balancer = "least_request";
//   muster::Discovery discovery(registry.get(), discovery_options);
//   muster::GrpcChannelPoolOptions options;
//   options.credentials = grpc::InsecureChannelCredentials();
//   muster::GrpcChannelPool pool(&discovery, options);
//
//   muster::ServiceQuery greeter;
//   greeter.service = "greeter";
//   HelloReply reply;
//   grpc::Status s = pool.Call(greeter, [&](const std::shared_ptr<grpc::Channel>& channel,
//                                           const muster::Instance& instance) {
//     Greeter::Stub stub(channel);
//     grpc::ClientContext context;  // one per attempt
//     context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
//     return stub.SayHello(&context, request, &reply);
//   });
//
// Channels follow the registry, not the calls. On a service's first use the
// pool adds a listener to Discovery (Discovery::AddListener), which hands it
// every new snapshot of the service as the registry pushes it: a channel is
// made when an instance enters the snapshot's `healthy` list (the instances
// Discovery hands out) and dropped when it leaves it (deregistered, lease
// lapsed, critical, disabled). So nothing polls, a call never pays for
// comparing snapshots, and channels to departed instances go at once, even
// for a service that is no longer called. A channel is shared by every
// followed instance with the same address and credentials (a server that
// serves several services) and dropped with the last of them.
//
// A call picks from the balancer, which may, for a moment around an update,
// hand out an instance whose channel is not (or no longer) held; that
// attempt gets a channel of its own, dropped after it.
//
// Thread-safe; no thread of its own: Call's attempts run on the calling
// thread, channel upkeep on the registry backend's thread. The pool must be
// destroyed before the Discovery it uses.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include <grpcpp/channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>
#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "muster/balancer.h"
#include "muster/call.h"
#include "muster/discovery.h"
#include "muster/instance.h"

namespace muster {

struct GrpcChannelPoolOptions {
  // Retries and outlier ejection (muster/call.h). The gRPC status of an
  // attempt is matched against retry_on by its code (gRPC's codes are
  // abseil's): by default UNAVAILABLE and DEADLINE_EXCEEDED are transport
  // failures, retried on another instance and counted for ejection. gRPC
  // also answers UNAVAILABLE when a connection broke after the request was
  // sent: for calls that must not run twice, narrow retry_on.
  CallPolicy call_policy;
  // The credentials of every channel. Plaintext by default, for a trusted
  // network; use grpc::SslCredentials (or others) anywhere else.
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  // When set, chooses each instance's credentials instead (say, TLS for the
  // instances whose metadata asks for it); null answers fall back to
  // `credentials`. The credentials object is part of a channel's key: return
  // one of a few long-lived objects, not a new one per call. Runs while the
  // pool's lock is held; must be quick.
  std::function<std::shared_ptr<grpc::ChannelCredentials>(const Instance&)> credentials_for;
  // Arguments of every channel (keep-alive, message sizes, ...).
  grpc::ChannelArguments channel_args;
  // Start connecting a channel as soon as it is made, so that the first call
  // to a new instance finds the connection up (as gRPC's own round_robin
  // does). false: a channel connects on its first call.
  bool connect_at_once = true;
};

class GrpcChannelPool {
 public:
  // `discovery` must outlive the pool.
  GrpcChannelPool(Discovery* discovery, GrpcChannelPoolOptions options);
  ~GrpcChannelPool();
  GrpcChannelPool(const GrpcChannelPool&) = delete;
  GrpcChannelPool& operator=(const GrpcChannelPool&) = delete;

  // One attempt of a call: the channel to `instance` and the instance. Build
  // a stub on the channel (stubs are cheap) and a fresh grpc::ClientContext
  // per attempt, with its deadline.
  using Attempt = std::function<grpc::Status(const std::shared_ptr<grpc::Channel>& channel,
                                             const Instance& instance)>;

  // Runs `attempt` on instances of the service picked by its balancer
  // (`request.hash_key` for ring_hash and maglev; `request.excluded` to skip
  // some) until one succeeds, an error not in retry_on comes back, or the
  // attempts are spent, and returns the last attempt's status. Reports every
  // attempt to the balancer (Discovery::Done, for least_request) and feeds
  // outlier ejection. When no attempt could run, the reason as a gRPC status:
  // UNAVAILABLE when there is no instance to pick or no list of the service
  // yet, INVALID_ARGUMENT for a bad query or balancer name.
  grpc::Status Call(const ServiceQuery& query, const Attempt& attempt,
                    const PickRequest& request = {});

  // The pool's channel to `instance` (by its address and credentials), for
  // code that keeps stubs or picks instances itself. When the pool holds
  // none, it follows the instance's service (namespace and name: every
  // version and tag; the first time this waits for its list, as
  // Discovery::Get does) and looks again. An instance the pool still does
  // not find (not listed as healthy) gets a channel of its own, which the
  // pool does not keep. Never null.
  std::shared_ptr<grpc::Channel> Channel(const Instance& instance);

  // Follows a service ahead of its first call, so that its channels are made
  // (and connecting) by then. Call does this by itself; the errors are
  // Discovery::Get's.
  absl::Status Follow(const ServiceQuery& query);

  // Whether an instance (by id) of the service is ejected now (Caller).
  bool IsEjected(const ServiceQuery& query, const std::string& id) const;

  // The channels held now, one per distinct address and credentials among
  // the healthy instances of the followed services.
  size_t channel_count() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// gRPC's status codes are abseil's canonical codes: the same names and
// numbers. These convert a status keeping its code and message (a code
// outside the canonical range becomes UNKNOWN; gRPC's error details are not
// carried).
absl::Status FromGrpcStatus(const grpc::Status& status);
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace muster
