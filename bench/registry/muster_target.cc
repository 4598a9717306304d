#include "registry/muster_target.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "registry/http_load.h"
#include "registry/expiry.h"
#include "registry/scale.h"
#include "registry/sse_fanout.h"
#include "registry/sse_watch.h"
#include "registry/xds_fanout.h"
#include "core/wire/paths.h"

namespace muster::bench {

MusterTarget::MusterTarget(std::string binary, std::vector<std::string> extra_args)
    : binary_(std::move(binary)), extra_args_(std::move(extra_args)) {}

MusterTarget::~MusterTarget() { Stop(); }

void MusterTarget::Start(const std::vector<std::string>& args) {
  Stop();
  dir_ = std::make_unique<TempDir>("muster-bench-musterd-");
  const uint16_t port = FreeLoopbackPorts(1)[0];
  endpoint_ = {boost::asio::ip::make_address_v4("127.0.0.1"), port};
  std::vector<std::string> argv = {binary_, "--data-dir", dir_->path() + "/data", "--listen",
                                   "127.0.0.1:" + std::to_string(port), "--xds-listen", "127.0.0.1:0",
                                   "--log-level", "warn"};
  argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
  argv.insert(argv.end(), args.begin(), args.end());
  argv_ = std::move(argv);
  Spawn();
}

void MusterTarget::Spawn() {
  process_ = std::make_unique<ServerProcess>(argv_, dir_->path() + "/musterd.log");
  const auto deadline = Clock::now() + std::chrono::seconds(300);
  while (Clock::now() < deadline) {
    if (process_->Exited()) throw std::runtime_error("musterd exited: " + process_->LogTail());
    if (HttpOnce(endpoint_, {"GET", "/healthz", ""}) == 200) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  throw std::runtime_error("musterd did not serve within 300 s: " + process_->LogTail());
}

void MusterTarget::Stop() {
  process_.reset();
  dir_.reset();
}

void MusterTarget::RegisterMany(const Params& p, int count, int ttl_seconds,
                                const std::function<std::string(int)>& service_of) {
  int next = 0;
  LoadResult r = RunHttpLoad(endpoint_, p.setup_connections, 0, [&](int) -> std::optional<HttpRequest> {
    if (next >= count) return std::nullopt;
    const int k = next++;
    return HttpRequest{"PUT", wire::InstancePath(service_of(k), "i-" + std::to_string(k)),
                       InstanceBody(k, ttl_seconds)};
  });
  if (r.failed > 0 || r.ok != static_cast<uint64_t>(count)) {
    throw std::runtime_error("musterd setup: registered " + std::to_string(r.ok) + " of " +
                             std::to_string(count) + "; " + r.first_error);
  }
}

Figures MusterTarget::Register(const Params& p) {
  Start();
  std::vector<int> seq(static_cast<size_t>(p.register_clients), 0);
  LoadResult r = RunHttpLoad(endpoint_, p.register_clients, p.register_seconds,
                             [&](int c) -> std::optional<HttpRequest> {
                               const int k = seq[static_cast<size_t>(c)]++;
                               return HttpRequest{"PUT",
                                                  wire::InstancePath("reg-" + std::to_string(c),
                                                                     "i-" + std::to_string(k)),
                                                  InstanceBody(k, 30)};
                             });
  Figures f = LoadFigures(r);
  Stop();
  return f;
}

Figures MusterTarget::Heartbeat(const Params& p) {
  Start();
  // Ten services, so that none reaches max_instances_per_service.
  auto service_of = [](int k) { return "hb-" + std::to_string(k % 10); };
  RegisterMany(p, p.heartbeat_instances, kHeartbeatTtl, service_of);
  int next = 0;
  LoadResult r = RunHttpLoad(endpoint_, p.heartbeat_inflight, p.heartbeat_seconds,
                             [&](int) -> std::optional<HttpRequest> {
                               const int k = next++ % p.heartbeat_instances;
                               return HttpRequest{"PUT",
                                                  wire::HeartbeatPath(service_of(k),
                                                                      "i-" + std::to_string(k)),
                                                  ""};
                             });
  Figures f = LoadFigures(r);
  Stop();
  return f;
}

Figures MusterTarget::Discover(const Params& p) {
  Start();
  RegisterMany(p, p.discover_instances, 30, [](int) { return std::string("disc"); });
  const HttpRequest list{"GET", wire::InstancesPath("disc"), ""};
  std::string body;
  if (HttpOnce(endpoint_, list, &body) != 200) throw std::runtime_error("musterd: list failed");
  size_t ids = 0;
  for (size_t at = body.find("\"create_revision\""); at != std::string::npos;
       at = body.find("\"create_revision\"", at + 1)) {
    ++ids;
  }
  if (ids != static_cast<size_t>(p.discover_instances)) {
    throw std::runtime_error("musterd: the list holds " + std::to_string(ids) + " instances");
  }
  LoadResult r = RunHttpLoad(endpoint_, p.discover_connections, p.discover_seconds,
                             [&](int) -> std::optional<HttpRequest> { return list; });
  Figures f = LoadFigures(r);
  f.extra.emplace_back("answer_bytes", static_cast<double>(body.size()));
  Stop();
  return f;
}

Figures MusterTarget::WatchFanout(const Params& p) {
  Start();
  FanoutResult r = RunSseFanout(endpoint_, p.watchers, p.watch_changes);
  Figures f = FanoutFigures(r, p.watch_changes);
  Stop();
  return f;
}

Figures MusterTarget::Expiry(const Params& p) {
  // Self-preservation would hold back expiry when most leases lapse at once,
  // which is what this scenario does on purpose: off (etcd has none).
  Start({"--self-preservation-threshold", "0"});
  ExpiryRun run(p);
  SseHooks hooks;
  hooks.opened = [&] { run.Opened(); };
  hooks.failed = [&](const std::string&) { run.Failed(); };
  hooks.event = [&](int nth) { run.Removal(nth); };
  boost::asio::io_context io(1);
  auto guard = boost::asio::make_work_guard(io);
  for (int w = 0; w < p.expiry_watchers; ++w) {
    boost::asio::co_spawn(io, SseWatch(endpoint_, "exp", "expired", hooks), boost::asio::detached);
  }
  std::thread watchers([&] { io.run(); });
  ExpiryResult r = run.Run(
      [&]() -> std::string {
        int next = 0;
        LoadResult reg = RunHttpLoad(endpoint_, p.setup_connections, 0, [&](int) -> std::optional<HttpRequest> {
          if (next >= p.expiry_instances) return std::nullopt;
          const int k = next++;
          return HttpRequest{"PUT", wire::InstancePath("exp", "i-" + std::to_string(k)),
                             InstanceBody(k, p.expiry_ttl_seconds)};
        });
        return reg.failed > 0 ? "registration: " + reg.first_error : "";
      },
      "not every watch stream opened");
  io.stop();
  watchers.join();
  Figures f = ExpiryFigures(r);
  Stop();
  return f;
}

Figures MusterTarget::Scale(const Params& p) {
  Start();
  ScaleResult r;
  r.instances = p.scale_instances;
  r.watchers = p.scale_watchers;
  const int services = 100;
  auto service_of = [](int k) { return "scale-" + std::to_string(k % services); };
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  r.rss_base = RssBytes(process_->pid());
  Params setup = p;
  setup.setup_connections = p.scale_connections;
  const auto begin = Clock::now();
  RegisterMany(setup, p.scale_instances, 3600, service_of);
  r.register_seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  r.rss_loaded = RssBytes(process_->pid());

  // Idle watchers of one service, opened 200 at a time.
  {
    std::atomic<int> ready{0}, failed{0};
    SseHooks hooks;
    hooks.opened = [&] { ++ready; };
    hooks.failed = [&](const std::string&) { ++failed; };
    hooks.event = [](int) {};
    auto io = std::make_unique<boost::asio::io_context>(1);
    auto guard = boost::asio::make_work_guard(*io);
    std::thread thread([&] { io->run(); });
    for (int started = 0; started < p.scale_watchers && failed == 0;) {
      const int batch = std::min(200, p.scale_watchers - started);
      for (int i = 0; i < batch; ++i) {
        boost::asio::co_spawn(*io, SseWatch(endpoint_, service_of(0), "", hooks), boost::asio::detached);
      }
      started += batch;
      const auto deadline = Clock::now() + std::chrono::seconds(30);
      while (ready + failed < started && Clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    }
    r.watchers_ready = ready;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    r.rss_watchers = RssBytes(process_->pid());
    guard.reset();
    io->stop();
    thread.join();
    io.reset();  // closes the watchers' sockets
  }

  process_->Terminate(120);
  const auto restart = Clock::now();
  Spawn();
  const HttpRequest list{"GET", wire::InstancesPath(service_of(0)), ""};
  std::string body;
  const unsigned status = HttpOnce(endpoint_, list, &body);
  r.restart_ms = std::chrono::duration<double, std::milli>(Clock::now() - restart).count();
  size_t listed = 0;
  for (size_t at = body.find("\"create_revision\""); at != std::string::npos;
       at = body.find("\"create_revision\"", at + 1)) {
    ++listed;
  }
  const size_t want = static_cast<size_t>((p.scale_instances + services - 1) / services);
  if (status != 200 || listed != want) {
    r.error = "after the restart the list of " + service_of(0) + " holds " + std::to_string(listed) +
              " instances (HTTP " + std::to_string(status) + "), not " + std::to_string(want);
  }
  Figures f = ScaleFigures(r);
  Stop();
  return f;
}

Figures MusterTarget::XdsFanout(const Params& p) {
  Start();
  XdsFanoutResult r = RunXdsFanout(endpoint_, process_->pid(), p);
  Figures f = XdsFanoutFigures(r, p.xds_changes);
  Stop();
  return f;
}

}  // namespace muster::bench
