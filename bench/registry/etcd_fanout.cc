// Watch fan-out over etcd Watch streams (see etcd_fanout.h).
#include "registry/etcd_fanout.h"

#include <atomic>
#include <thread>

#include "registry/etcd_watchers.h"
#include "registry/scenario.h"
#include "rpc.grpc.pb.h"

namespace muster::bench {
namespace {

constexpr auto kChangeTimeout = std::chrono::seconds(10);
constexpr char kPrefix[] = "/bench/fan/";

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

struct Shared {
  explicit Shared(int changes)
      : seen(static_cast<size_t>(changes)),
        first_ns(static_cast<size_t>(changes)),
        last_ns(static_cast<size_t>(changes)) {}
  std::vector<std::atomic<int>> seen;
  std::vector<std::atomic<int64_t>> first_ns;
  std::vector<std::atomic<int64_t>> last_ns;
  std::atomic<int> ready{0};
  std::atomic<int> failed{0};

  void Arrived(int index) {
    if (index >= static_cast<int>(seen.size())) return;
    const auto i = static_cast<size_t>(index);
    const int64_t now = NowNs();
    if (first_ns[i].load(std::memory_order_relaxed) == 0) first_ns[i].store(now, std::memory_order_relaxed);
    last_ns[i].store(now, std::memory_order_relaxed);
    seen[i].fetch_add(1, std::memory_order_release);
  }
};

}  // namespace

FanoutResult RunEtcdFanout(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                           const std::shared_ptr<grpc::Channel>& writer, int watchers, int changes) {
  FanoutResult result;
  result.watchers = watchers;
  Shared shared(changes);
  EtcdWatchers::Hooks hooks;
  hooks.created = [&shared] { shared.ready.fetch_add(1, std::memory_order_release); };
  hooks.failed = [&shared] { shared.failed.fetch_add(1); };
  hooks.event = [&shared](int nth) { shared.Arrived(nth); };
  EtcdWatchers streams(channels, kPrefix, watchers, /*deletes_only=*/false, std::move(hooks));

  // The driver: waits for every watch, then makes the changes.
  std::string error;
  std::thread driver([&] {
    const auto open_deadline = Clock::now() + std::chrono::seconds(60);
    while (shared.ready.load() + shared.failed.load() < watchers && Clock::now() < open_deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    result.ready = shared.ready.load();
    if (result.ready == watchers) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      auto kv = etcdserverpb::KV::NewStub(writer);
      for (int k = 0; k < changes; ++k) {
        etcdserverpb::PutRequest put;
        put.set_key(std::string(kPrefix) + "w-" + std::to_string(k));
        put.set_value(EtcdValue("fan", k, 30));
        etcdserverpb::PutResponse answer;
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + kChangeTimeout);
        const auto sent = Clock::now();
        const int64_t sent_ns = NowNs();
        grpc::Status status = kv->Put(&context, put, &answer);
        result.write.Add(Clock::now() - sent);
        if (!status.ok()) {
          error = "Put: " + status.error_message();
          break;
        }
        const auto i = static_cast<size_t>(k);
        while (shared.seen[i].load(std::memory_order_acquire) < watchers && Clock::now() < sent + kChangeTimeout) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        if (shared.seen[i].load(std::memory_order_acquire) < watchers) {
          error = "change " + std::to_string(k) + " reached " + std::to_string(shared.seen[i].load()) +
                  " watchers in 10 s";
          break;
        }
        result.last.AddMs(static_cast<double>(shared.last_ns[i].load() - sent_ns) / 1e6);
        result.first.AddMs(static_cast<double>(shared.first_ns[i].load() - sent_ns) / 1e6);
        ++result.changes;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    } else {
      error = "not every watch was created";
    }
    streams.Cancel();
  });
  streams.Run();
  driver.join();
  result.error = error;
  return result;
}

}  // namespace muster::bench
