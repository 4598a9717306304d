// MusterTarget: the benchmark scenarios against musterd with its embedded
// store, over its native HTTP API (keep-alive connections, see http_load.h;
// watches as Server-Sent Events, see sse_fanout.h). Each scenario starts a
// fresh musterd on a free loopback port with a new data directory.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "registry/process.h"
#include "registry/scenario.h"

namespace muster::bench {

class MusterTarget : public Target {
 public:
  // `binary`: path of musterd; `extra_args` go after the harness's own flags.
  MusterTarget(std::string binary, std::vector<std::string> extra_args);
  ~MusterTarget() override;

  Figures Register(const Params& p) override;
  Figures Heartbeat(const Params& p) override;
  Figures Discover(const Params& p) override;
  Figures WatchFanout(const Params& p) override;
  Figures Expiry(const Params& p) override;
  Figures Scale(const Params& p) override;
  // ADS streams and EDS pushes: see xds_fanout.h.
  Figures XdsFanout(const Params& p) override;

 private:
  // Starts musterd on a fresh data directory and waits until /healthz
  // answers; `args` go after the harness's and extra_args.
  void Start(const std::vector<std::string>& args = {});
  // Spawns musterd with argv_ (same data directory and port) and waits until
  // /healthz answers (musterd loads its store before it listens).
  void Spawn();
  void Stop();
  // Registers instance ids "i-<k>" for k in [0, count) in service
  // service_of(k) with `ttl_seconds`; throws unless all succeed.
  void RegisterMany(const Params& p, int count, int ttl_seconds,
                    const std::function<std::string(int)>& service_of);

  const std::string binary_;
  const std::vector<std::string> extra_args_;
  std::unique_ptr<TempDir> dir_;
  std::vector<std::string> argv_;
  std::unique_ptr<ServerProcess> process_;
  boost::asio::ip::tcp::endpoint endpoint_;
};

}  // namespace muster::bench
