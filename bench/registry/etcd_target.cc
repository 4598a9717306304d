// The benchmark scenarios against etcd (see etcd_target.h).
#include "registry/etcd_target.h"

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <thread>

#include "etcd/client.h"
#include "registry/etcd_fanout.h"
#include "registry/etcd_watchers.h"
#include "registry/expiry.h"
#include "registry/grpc_load.h"
#include "registry/keepalive_load.h"
#include "registry/scale.h"
#include "rpc.grpc.pb.h"

namespace muster::bench {
namespace {

using etcdserverpb::LeaseGrantResponse;
using etcdserverpb::PutResponse;
using etcdserverpb::RangeResponse;

std::string Describe(const grpc::Status& s, const char* what) {
  return std::string(what) + ": gRPC " + std::to_string(static_cast<int>(s.error_code())) + " " +
         s.error_message();
}

// One registration: LeaseGrant, then Put of the key bound to the lease.
// `done` gets the lease id (0 on failure) as well.
void GrantAndPut(grpc::CompletionQueue* cq, etcdserverpb::Lease::Stub* lease, etcdserverpb::KV::Stub* kv,
                 int ttl_seconds, std::string key, std::string value,
                 std::function<void(bool, const std::string&, int64_t)> done) {
  etcdserverpb::LeaseGrantRequest grant;
  grant.set_ttl(ttl_seconds);
  CallAsync<LeaseGrantResponse>(
      cq, [&](grpc::ClientContext* c, grpc::CompletionQueue* q) { return lease->AsyncLeaseGrant(c, grant, q); },
      [cq, kv, key = std::move(key), value = std::move(value), done = std::move(done)](
          const grpc::Status& status, LeaseGrantResponse& granted) mutable {
        if (!status.ok()) return done(false, Describe(status, "LeaseGrant"), 0);
        etcdserverpb::PutRequest put;
        put.set_key(key);
        put.set_value(value);
        put.set_lease(granted.id());
        const int64_t id = granted.id();
        CallAsync<PutResponse>(
            cq, [&](grpc::ClientContext* c, grpc::CompletionQueue* q) { return kv->AsyncPut(c, put, q); },
            [id, done = std::move(done)](const grpc::Status& s, PutResponse&) {
              if (!s.ok()) return done(false, Describe(s, "Put"), 0);
              done(true, "", id);
            });
      });
}

}  // namespace

EtcdTarget::EtcdTarget(std::string binary) : binary_(std::move(binary)) {}

EtcdTarget::~EtcdTarget() { Stop(); }

void EtcdTarget::Start() {
  Stop();
  dir_ = std::make_unique<TempDir>("muster-bench-etcd-");
  const std::vector<uint16_t> ports = FreeLoopbackPorts(2);
  const std::string client = "http://127.0.0.1:" + std::to_string(ports[0]);
  const std::string peer = "http://127.0.0.1:" + std::to_string(ports[1]);
  address_ = "127.0.0.1:" + std::to_string(ports[0]);
  std::vector<std::string> argv = {binary_,
                                   "--name", "bench",
                                   "--data-dir", dir_->path() + "/data",
                                   "--listen-client-urls", client,
                                   "--advertise-client-urls", client,
                                   "--listen-peer-urls", peer,
                                   "--initial-advertise-peer-urls", peer,
                                   "--initial-cluster", "bench=" + peer,
                                   "--initial-cluster-state", "new",
                                   "--enable-v2=false",
                                   "--logger", "zap",
                                   "--log-outputs", "stderr"};
  argv_ = std::move(argv);
  port_ = ports[0];
  Spawn();
}

void EtcdTarget::Spawn() {
  process_ = std::make_unique<ServerProcess>(argv_, dir_->path() + "/etcd.log");
  const auto deadline = Clock::now() + std::chrono::seconds(300);
  while (Clock::now() < deadline) {
    if (process_->Exited()) throw std::runtime_error("etcd exited: " + process_->LogTail());
    // A channel made before etcd listens would wait out gRPC's reconnect
    // backoff: probe the port first, then ask on a new channel.
    if (LoopbackAccepts(port_)) {
      auto probe = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
      auto maintenance = etcdserverpb::Maintenance::NewStub(probe);
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
      context.set_wait_for_ready(true);
      etcdserverpb::StatusResponse status;
      if (maintenance->Status(&context, etcdserverpb::StatusRequest(), &status).ok() && status.leader() != 0) {
        channels_ = MakeChannels(address_, kChannels);
        return;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  throw std::runtime_error("etcd did not serve within 300 s: " + process_->LogTail());
}

void EtcdTarget::Stop() {
  channels_.clear();
  process_.reset();
  dir_.reset();
}

std::vector<int64_t> EtcdTarget::RegisterMany(const Params& p, int count, int ttl_seconds,
                                              const std::string& prefix, const std::string& service) {
  std::vector<std::unique_ptr<etcdserverpb::Lease::Stub>> leases;
  std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> kvs;
  for (auto& channel : channels_) {
    leases.push_back(etcdserverpb::Lease::NewStub(channel));
    kvs.push_back(etcdserverpb::KV::NewStub(channel));
  }
  std::vector<int64_t> ids(static_cast<size_t>(count), 0);
  int next = 0;
  LoadResult r = RunGrpcLoad(p.setup_connections, 0, [&](grpc::CompletionQueue* cq, int slot, OpDone done) {
    if (next >= count) return false;
    const int k = next++;
    const size_t ch = static_cast<size_t>(slot) % channels_.size();
    GrantAndPut(cq, leases[ch].get(), kvs[ch].get(), ttl_seconds, prefix + "i-" + std::to_string(k),
                EtcdValue(service, k, ttl_seconds),
                [&ids, k, done = std::move(done)](bool ok, const std::string& error, int64_t id) {
                  ids[static_cast<size_t>(k)] = id;
                  done(ok, error);
                });
    return true;
  });
  if (r.failed > 0 || r.ok != static_cast<uint64_t>(count)) {
    throw std::runtime_error("etcd setup: registered " + std::to_string(r.ok) + " of " +
                             std::to_string(count) + "; " + r.first_error);
  }
  return ids;
}

Figures EtcdTarget::Register(const Params& p) {
  Start();
  std::vector<std::unique_ptr<etcdserverpb::Lease::Stub>> leases;
  std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> kvs;
  for (auto& channel : channels_) {
    leases.push_back(etcdserverpb::Lease::NewStub(channel));
    kvs.push_back(etcdserverpb::KV::NewStub(channel));
  }
  std::vector<int> seq(static_cast<size_t>(p.register_clients), 0);
  LoadResult r = RunGrpcLoad(p.register_clients, p.register_seconds,
                             [&](grpc::CompletionQueue* cq, int slot, OpDone done) {
                               const int k = seq[static_cast<size_t>(slot)]++;
                               const size_t ch = static_cast<size_t>(slot) % channels_.size();
                               const std::string service = "reg-" + std::to_string(slot);
                               GrantAndPut(cq, leases[ch].get(), kvs[ch].get(), 30,
                                           "/bench/" + service + "/i-" + std::to_string(k),
                                           EtcdValue(service, k, 30),
                                           [done = std::move(done)](bool ok, const std::string& e, int64_t) {
                                             done(ok, e);
                                           });
                               return true;
                             });
  Figures f = LoadFigures(r);
  Stop();
  return f;
}

Figures EtcdTarget::Heartbeat(const Params& p) {
  Start();
  std::vector<int64_t> ids = RegisterMany(p, p.heartbeat_instances, kHeartbeatTtl, "/bench/hb/", "hb");
  // The renewals in flight, as 8 streams of 8: etcd's own client keeps one
  // stream per client and writes renewals on it without waiting.
  const int streams = kChannels;
  const int window = std::max(1, p.heartbeat_inflight / streams);
  LoadResult r = RunKeepAliveLoad(channels_, ids, streams, window, p.heartbeat_seconds);
  Figures f = LoadFigures(r);
  f.extra.emplace_back("streams", streams);
  Stop();
  return f;
}

Figures EtcdTarget::Discover(const Params& p) {
  Start();
  const std::string prefix = "/bench/disc/";
  RegisterMany(p, p.discover_instances, 30, prefix, "disc");
  etcdserverpb::RangeRequest range;
  range.set_key(prefix);
  range.set_range_end(etcd::PrefixEnd(prefix));
  {
    auto kv = etcdserverpb::KV::NewStub(channels_[0]);
    grpc::ClientContext context;
    etcdserverpb::RangeResponse answer;
    grpc::Status s = kv->Range(&context, range, &answer);
    if (!s.ok() || answer.kvs_size() != p.discover_instances) {
      throw std::runtime_error("etcd: the range holds " + std::to_string(answer.kvs_size()) + " keys");
    }
  }
  std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> kvs;
  for (auto& channel : channels_) kvs.push_back(etcdserverpb::KV::NewStub(channel));
  size_t answer_bytes = 0;
  LoadResult r = RunGrpcLoad(p.discover_connections, p.discover_seconds,
                             [&](grpc::CompletionQueue* cq, int slot, OpDone done) {
                               auto* kv = kvs[static_cast<size_t>(slot) % kvs.size()].get();
                               CallAsync<RangeResponse>(
                                   cq,
                                   [&](grpc::ClientContext* c, grpc::CompletionQueue* q) {
                                     return kv->AsyncRange(c, range, q);
                                   },
                                   [&answer_bytes, want = p.discover_instances, done = std::move(done)](
                                       const grpc::Status& s, RangeResponse& answer) {
                                     if (!s.ok()) return done(false, Describe(s, "Range"));
                                     if (answer.kvs_size() != want) return done(false, "Range: short answer");
                                     if (answer_bytes == 0) answer_bytes = answer.ByteSizeLong();
                                     done(true, "");
                                   });
                               return true;
                             });
  Figures f = LoadFigures(r);
  f.extra.emplace_back("answer_bytes", static_cast<double>(answer_bytes));
  Stop();
  return f;
}

Figures EtcdTarget::WatchFanout(const Params& p) {
  Start();
  auto watch_channels = MakeChannels(address_, kWatchChannels);
  FanoutResult r = RunEtcdFanout(watch_channels, channels_[0], p.watchers, p.watch_changes);
  Figures f = FanoutFigures(r, p.watch_changes);
  watch_channels.clear();
  Stop();
  return f;
}

Figures EtcdTarget::Expiry(const Params& p) {
  Start();
  ExpiryRun run(p);
  EtcdWatchers::Hooks hooks;
  hooks.created = [&] { run.Opened(); };
  hooks.failed = [&] { run.Failed(); };
  hooks.event = [&](int nth) { run.Removal(nth); };
  const std::string prefix = "/bench/exp/";
  auto watch_channels = MakeChannels(address_, std::min(kWatchChannels, p.expiry_watchers));
  EtcdWatchers streams(watch_channels, prefix, p.expiry_watchers, /*deletes_only=*/true, std::move(hooks));
  std::thread watchers([&] { streams.Run(); });
  ExpiryResult r = run.Run(
      [&]() -> std::string {
        try {
          RegisterMany(p, p.expiry_instances, p.expiry_ttl_seconds, prefix, "exp");
        } catch (const std::exception& e) {
          return e.what();
        }
        return "";
      },
      "not every watch was created");
  streams.Cancel();
  watchers.join();
  Figures f = ExpiryFigures(r);
  Stop();
  return f;
}

Figures EtcdTarget::Scale(const Params& p) {
  Start();
  ScaleResult r;
  r.instances = p.scale_instances;
  r.watchers = p.scale_watchers;
  const std::string prefix = "/bench/scale/";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  r.rss_base = RssBytes(process_->pid());
  Params setup = p;
  setup.setup_connections = p.scale_connections;
  const auto begin = Clock::now();
  RegisterMany(setup, p.scale_instances, 3600, prefix, "scale");
  r.register_seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  r.rss_loaded = RssBytes(process_->pid());

  {
    std::atomic<int> ready{0}, failed{0};
    EtcdWatchers::Hooks hooks;
    hooks.created = [&] { ++ready; };
    hooks.failed = [&] { ++failed; };
    hooks.event = [](int) {};
    auto watch_channels = MakeChannels(address_, kWatchChannels);
    // Idle: a key range no write touches (musterd's watchers are on a
    // service no write touches either).
    EtcdWatchers streams(watch_channels, prefix + "w/", p.scale_watchers, false, std::move(hooks));
    std::thread thread([&] { streams.Run(); });
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (ready + failed < p.scale_watchers && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    r.watchers_ready = ready;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    r.rss_watchers = RssBytes(process_->pid());
    streams.Cancel();
    thread.join();
  }

  channels_.clear();
  process_->Terminate(120);
  const auto restart = Clock::now();
  Spawn();
  etcdserverpb::RangeRequest range;
  range.set_key(prefix);
  range.set_range_end(etcd::PrefixEnd(prefix));
  range.set_count_only(true);
  auto kv = etcdserverpb::KV::NewStub(channels_[0]);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  etcdserverpb::RangeResponse answer;
  grpc::Status s = kv->Range(&context, range, &answer);
  r.restart_ms = std::chrono::duration<double, std::milli>(Clock::now() - restart).count();
  if (!s.ok() || answer.count() != p.scale_instances) {
    r.error = "after the restart etcd counts " + std::to_string(answer.count()) + " keys (" +
              Describe(s, "Range") + "), not " + std::to_string(p.scale_instances);
  }
  Figures f = ScaleFigures(r);
  Stop();
  return f;
}

Figures EtcdTarget::XdsFanout(const Params&) {
  Figures f;
  f.note = "etcd serves no xDS (musterd only)";
  return f;
}

}  // namespace muster::bench
