// EtcdTarget: the benchmark scenarios against a single-member etcd (Debian's
// etcd-server) over its v3 gRPC API, asynchronously (completion queues, see
// grpc_load.h). Each scenario starts a fresh etcd on free loopback ports with
// a new data directory.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "registry/process.h"
#include "registry/scenario.h"

namespace muster::bench {

class EtcdTarget : public Target {
 public:
  // HTTP/2 connections the closed-loop scenarios spread their calls over.
  static constexpr int kChannels = 8;
  // Connections the watch streams of watch_fanout are spread over.
  static constexpr int kWatchChannels = 64;

  explicit EtcdTarget(std::string binary);
  ~EtcdTarget() override;

  Figures Register(const Params& p) override;
  Figures Heartbeat(const Params& p) override;
  Figures Discover(const Params& p) override;
  Figures WatchFanout(const Params& p) override;
  Figures Expiry(const Params& p) override;
  Figures Scale(const Params& p) override;
  // etcd serves no xDS: not measured, with a note saying so.
  Figures XdsFanout(const Params& p) override;

 private:
  // Starts etcd on a fresh data directory and waits until it has a leader.
  void Start();
  // Spawns etcd with argv_ (same data directory and ports) and waits until
  // it answers Status with a leader.
  void Spawn();
  void Stop();
  // Grants `count` leases of `ttl_seconds` and puts one key under `prefix`
  // bound to each ("<prefix>i-<k>"); returns the lease ids. Throws unless
  // all succeed.
  std::vector<int64_t> RegisterMany(const Params& p, int count, int ttl_seconds,
                                    const std::string& prefix, const std::string& service);

  const std::string binary_;
  std::unique_ptr<TempDir> dir_;
  std::vector<std::string> argv_;
  uint16_t port_ = 0;
  std::unique_ptr<ServerProcess> process_;
  std::string address_;  // 127.0.0.1:PORT
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
};

}  // namespace muster::bench
