// registry_bench: musterd (embedded store) against a single-member etcd, the
// scenarios of docs/benchmarks.md run against each in turn on fresh servers,
// then one table on stdout and the same as JSON. Run by scripts/bench.sh.
//
//   registry_bench --musterd build/musterd [--etcd /usr/bin/etcd] [--quick]
//                  [--out bench/results/latest.json] [--only register,discover]
//                  [--xds-streams 1000] [--xds-changes 50]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "registry/etcd_target.h"
#include "registry/latency.h"
#include "registry/muster_target.h"
#include "registry/process.h"
#include "registry/report.h"

namespace muster::bench {
namespace {

struct Options {
  std::string musterd;
  std::string etcd = "/usr/bin/etcd";
  std::string out = "bench/results/latest.json";
  bool quick = false;
  std::set<std::string> only;
  int xds_streams = 0;  // 0: the default of Params
  int xds_changes = 0;
};

Params ParamsFor(bool quick) {
  Params p;
  p.quick = quick;
  if (quick) {
    p.register_seconds = 3;
    p.heartbeat_instances = 10000;
    p.heartbeat_seconds = 3;
    p.discover_seconds = 3;
    p.watchers = 1000;
    p.expiry_instances = 1000;
    p.expiry_watchers = 10;
    p.expiry_ttl_seconds = 5;
    p.scale_instances = 20000;
    p.scale_watchers = 1000;
    p.xds_changes = 10;
  }
  return p;
}

// Runs one side of a scenario; an exception becomes "not measured".
Figures Run(const char* system, const std::function<Figures()>& run) {
  const auto begin = Clock::now();
  Figures f;
  try {
    f = run();
  } catch (const std::exception& e) {
    f = Figures{};
    f.note = std::string("failed: ") + e.what();
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  std::printf("  %-8s %s (%.1f s)\n", system,
              f.value ? std::to_string(*f.value).c_str() : ("not measured: " + f.note).c_str(), seconds);
  std::fflush(stdout);
  return f;
}

int Main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--musterd") {
      o.musterd = value();
    } else if (a == "--etcd") {
      o.etcd = value();
    } else if (a == "--out") {
      o.out = value();
    } else if (a == "--quick") {
      o.quick = true;
    } else if (a == "--xds-streams" || a == "--xds-changes") {
      const std::string v = value();
      char* end = nullptr;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (end == v.c_str() || *end != '\0' || n < 1 || n > 100000) {
        std::fprintf(stderr, "%s takes a number from 1 to 100000, not %s\n", a.c_str(), v.c_str());
        return 2;
      }
      (a == "--xds-streams" ? o.xds_streams : o.xds_changes) = static_cast<int>(n);
    } else if (a == "--only") {
      std::stringstream list(value());
      for (std::string name; std::getline(list, name, ',');) o.only.insert(name);
    } else {
      std::fprintf(stderr, "usage: registry_bench --musterd PATH [--etcd PATH] [--quick] [--out FILE] "
                           "[--only a,b] [--xds-streams N] [--xds-changes K]\n");
      return 2;
    }
  }
  if (o.musterd.empty()) {
    std::fprintf(stderr, "registry_bench: --musterd PATH is required\n");
    return 2;
  }
  std::printf("%s\n", RaiseOpenFileLimit().c_str());
  const std::string machine = MachineDescription();
  const std::string load_before = LoadAverage();
  std::printf("machine: %s\nload average before: %s (1, 5, 15 min; other work on the machine skews every figure)\n%s run; every scenario starts a fresh musterd (%s) and a fresh etcd (%s)\n",
              machine.c_str(), load_before.c_str(), o.quick ? "QUICK" : "full", o.musterd.c_str(), o.etcd.c_str());

  Params p = ParamsFor(o.quick);
  if (o.xds_streams > 0) p.xds_streams = o.xds_streams;
  if (o.xds_changes > 0) p.xds_changes = o.xds_changes;
  MusterTarget muster(o.musterd, {});
  EtcdTarget etcd(o.etcd);
  const auto channels = std::to_string(EtcdTarget::kChannels);

  struct Scenario {
    std::string name, unit, params;
    Figures (Target::*run)(const Params&);
  };
  const std::vector<Scenario> scenarios = {
      {"register", "ops/s",
       std::to_string(p.register_clients) + " clients, each registering new instances (TTL 30 s) back to back for " +
           std::to_string(static_cast<int>(p.register_seconds)) +
           " s; musterd: PUT over keep-alive connections; etcd: LeaseGrant + Put, over " + channels +
           " connections",
       &Target::Register},
      {"heartbeat", "ops/s",
       std::to_string(p.heartbeat_instances) + " instances renewed in turn, " + std::to_string(p.heartbeat_inflight) +
           " renewals in flight, for " + std::to_string(static_cast<int>(p.heartbeat_seconds)) +
           " s; musterd: PUT .../heartbeat on " + std::to_string(p.heartbeat_inflight) +
           " connections; etcd: LeaseKeepAlive, " + channels + " streams of " +
           std::to_string(p.heartbeat_inflight / EtcdTarget::kChannels) + " in flight",
       &Target::Heartbeat},
      {"discover", "ops/s",
       "list of one service of " + std::to_string(p.discover_instances) + " instances, " +
           std::to_string(p.discover_connections) + " in flight, for " +
           std::to_string(static_cast<int>(p.discover_seconds)) + " s; musterd: GET .../instances on " +
           std::to_string(p.discover_connections) + " connections; etcd: Range over the prefix (linearizable), " +
           channels + " connections",
       &Target::Discover},
      {"watch_fanout", "ms",
       std::to_string(p.watchers) + " watchers of one service, " + std::to_string(p.watch_changes) +
           " changes one after another; figure: p50 over the changes of the time from sending the write "
           "until the last watcher had the event; musterd: one SSE connection per watcher; etcd: one Watch "
           "stream per watcher over " + std::to_string(EtcdTarget::kWatchChannels) + " connections",
       &Target::WatchFanout},
      {"expiry", "ms",
       std::to_string(p.expiry_instances) + " instances registered with a TTL of " +
           std::to_string(p.expiry_ttl_seconds) + " s and never renewed, " + std::to_string(p.expiry_watchers) +
           " watchers; figure: from when the last lease is due (its registration's answer + TTL) until every "
           "watcher had every removal; musterd with --self-preservation-threshold 0 (else it holds back "
           "expiry when most leases lapse at once)",
       &Target::Expiry},
      {"scale", "B/inst",
       std::to_string(p.scale_instances) + " instances (TTL 1 h, 100 services) registered over " +
           std::to_string(p.scale_connections) + " connections, then " + std::to_string(p.scale_watchers) +
           " idle watchers, then a clean stop and a restart; figure: RSS growth per instance; watcher_bytes: "
           "RSS growth per idle watcher; restart_ms: from the restart until a list answered in full",
       &Target::Scale},
      {"xds_fanout", "ms",
       std::to_string(p.xds_streams) + " xDS (ADS) streams, " + std::to_string(p.xds_streams_per_channel) +
           " to an HTTP/2 connection, each following EDS of one service and ACKing every response, then " +
           std::to_string(p.xds_changes) +
           " registrations in it one after another; figure: p50 over the changes of the time from sending "
           "the registration until the last stream had the assignment holding it; stream_*: the same per "
           "stream and change; bytes_per_stream: RSS growth with the streams open, divided by the streams; "
           "musterd only",
       &Target::XdsFanout},
  };

  std::vector<Row> rows;
  for (const Scenario& s : scenarios) {
    Row row{s.name, s.unit, s.params, {}, {}};
    const bool wanted = o.only.empty() || o.only.count(s.name) > 0;
    if (s.run == nullptr || !wanted) {
      row.muster.note = row.etcd.note = s.run == nullptr ? "not built yet" : "not selected (--only)";
      if (s.run == nullptr) row.params = "not built yet: " + s.params;
      rows.push_back(std::move(row));
      continue;
    }
    std::printf("== %s: %s\n", s.name.c_str(), s.params.c_str());
    std::fflush(stdout);
    row.muster = Run("musterd", [&] { return (muster.*s.run)(p); });
    row.etcd = Run("etcd", [&] { return (etcd.*s.run)(p); });
    rows.push_back(std::move(row));
  }
  PrintTable(rows);
  const std::string load_after = LoadAverage();
  std::printf("load average after: %s\n", load_after.c_str());
  if (!WriteJson(o.out, machine, o.quick, load_before, load_after, rows)) {
    std::fprintf(stderr, "registry_bench: cannot write %s\n", o.out.c_str());
    return 1;
  }
  std::printf("\nwritten: %s\n", o.out.c_str());
  return 0;
}

}  // namespace
}  // namespace muster::bench

int main(int argc, char** argv) { return muster::bench::Main(argc, argv); }
