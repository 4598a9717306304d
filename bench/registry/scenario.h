// The scenarios of the musterd-versus-etcd benchmark: their parameters, the
// figures one run of a scenario against one system yields, and the interface
// each system's driver (MusterTarget, EtcdTarget) implements.
//
// Every scenario starts a fresh server (new temporary data directory) and
// stops it at the end, so that no scenario sees another's leases expire.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace muster::bench {

struct Params {
  bool quick = false;
  // register: clients registering new instances (TTL 30 s) back to back.
  int register_clients = 64;
  double register_seconds = 10;
  // heartbeat: renewals of `heartbeat_instances` leases, `heartbeat_inflight`
  // at a time (musterd: connections; etcd: spread over keep-alive streams).
  int heartbeat_instances = 100000;
  int heartbeat_inflight = 64;
  double heartbeat_seconds = 10;
  // discover: lists of one service of `discover_instances` instances.
  int discover_instances = 100;
  int discover_connections = 64;
  double discover_seconds = 10;
  // watch_fanout: watchers of one service, changes made one after another.
  int watchers = 10000;
  int watch_changes = 20;
  // expiry: instances registered with a short TTL and never renewed, and
  // the watchers that must see every removal.
  int expiry_instances = 10000;
  int expiry_watchers = 100;
  int expiry_ttl_seconds = 10;
  // scale: instances registered (TTL 1 h, in 100 services), idle watchers
  // opened after, then a restart; the registrations use scale_connections.
  int scale_instances = 1000000;
  int scale_watchers = 10000;
  int scale_connections = 256;
  // Connections the setup (registering the instances a scenario needs) uses.
  int setup_connections = 64;
  // xds_fanout (musterd only): ADS streams, each following EDS of one
  // service, `xds_streams_per_channel` to an HTTP/2 connection; then
  // `xds_changes` registrations in that service, one after another.
  int xds_streams = 1000;
  int xds_streams_per_channel = 100;
  int xds_changes = 50;
};

// What one scenario measured on one system. value empty: not measured (with
// `note` saying why). extra: scenario-specific fields, e.g. {"p99_ms", 3.2},
// written to JSON as "<system>_p99_ms".
struct Figures {
  std::optional<double> value;
  std::vector<std::pair<std::string, double>> extra;
  std::string note;
};

// The TTL of the heartbeat scenario's instances: long enough that none lapses
// while the setup is still registering the others.
inline constexpr int kHeartbeatTtl = 300;

// The JSON body of registration k ({"address": ..., "ttl_seconds": ...}):
// what musterd is sent. etcd is sent the instance as musterd would store it
// (EtcdValue), so that both store and return values of about the same size.
std::string InstanceBody(int k, int ttl_seconds);
std::string EtcdValue(const std::string& service, int k, int ttl_seconds);

class Target {
 public:
  virtual ~Target() = default;
  virtual Figures Register(const Params& p) = 0;
  virtual Figures Heartbeat(const Params& p) = 0;
  virtual Figures Discover(const Params& p) = 0;
  virtual Figures WatchFanout(const Params& p) = 0;
  virtual Figures Expiry(const Params& p) = 0;
  virtual Figures Scale(const Params& p) = 0;
  virtual Figures XdsFanout(const Params& p) = 0;
};

}  // namespace muster::bench
