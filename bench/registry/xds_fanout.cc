// The xds_fanout scenario (see xds_fanout.h).
#include "registry/xds_fanout.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <stdexcept>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "core/wire/paths.h"
#include "registry/grpc_load.h"
#include "registry/http_load.h"
#include "registry/process.h"
#include "registry/xds_streams.h"

namespace muster::bench {
namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::ip::tcp;

namespace {

constexpr char kService[] = "xfan";
constexpr char kIdPrefix[] = "x-";
constexpr auto kChangeTimeout = std::chrono::seconds(10);
constexpr auto kOpenTimeout = std::chrono::seconds(60);
constexpr int64_t kNotYet = std::numeric_limits<int64_t>::min();

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

// What the completion-queue thread records and the driver waits on.
struct Shared {
  Shared(int stream_count, int change_count)
      : changes(change_count),
        seen(static_cast<size_t>(change_count)),
        arrival_ns(static_cast<size_t>(stream_count) * static_cast<size_t>(change_count), kNotYet),
        sent_ns(static_cast<size_t>(change_count), kNotYet) {}
  const int changes;
  std::atomic<int> ready{0};
  std::atomic<int> failed{0};
  std::vector<std::atomic<int>> seen;  // per change: streams that have it
  // [stream * changes + change]: when the stream read it. Written on the
  // completion-queue thread only, read once that thread is done.
  std::vector<int64_t> arrival_ns;
  // Per change: just before its PUT was sent. Driver thread only.
  std::vector<int64_t> sent_ns;

  void Arrived(int stream, int nth) {
    if (nth >= changes) return;
    arrival_ns[static_cast<size_t>(stream) * static_cast<size_t>(changes) + static_cast<size_t>(nth)] = NowNs();
    seen[static_cast<size_t>(nth)].fetch_add(1, std::memory_order_release);
  }
};

// Waits until `done()` or `deadline`; true when done.
template <typename Done>
bool WaitUntil(Clock::time_point deadline, Done done) {
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// One keep-alive HTTP connection, blocking: the registrations of the changes.
class Writer {
 public:
  explicit Writer(const tcp::endpoint& server) : socket_(io_) {
    socket_.connect(server);
    socket_.set_option(tcp::no_delay(true));
  }
  // The status of the answer.
  unsigned Send(const std::string& text) {
    asio::write(socket_, asio::buffer(text));
    http::response<http::string_body> answer;
    http::read(socket_, buffer_, answer);
    return answer.result_int();
  }

 private:
  asio::io_context io_;
  tcp::socket socket_;
  boost::beast::flat_buffer buffer_;
};

// Steps 2 (after the streams are started) to 4 of xds_fanout.h, on the
// driver thread; returns the error, empty when every step went through.
std::string Drive(const tcp::endpoint& server, pid_t pid, const Params& p, Shared& shared,
                  XdsFanoutResult& r, Clock::time_point open_begin) {
  const int n = p.xds_streams;
  if (!WaitUntil(open_begin + kOpenTimeout, [&] { return shared.ready.load() + shared.failed.load() >= n; })) {
    r.ready = shared.ready.load();
    return "streams answered: " + std::to_string(r.ready) + " of " + std::to_string(n) + " in 60 s";
  }
  r.open_ms = std::chrono::duration<double, std::milli>(Clock::now() - open_begin).count();
  r.ready = shared.ready.load();
  if (r.ready < n) return "streams answered: " + std::to_string(r.ready) + " of " + std::to_string(n);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  r.rss_streams = RssBytes(pid);
  r.threads_streams = ThreadCount(pid);
  r.opened = ReadXdsHealth(server);
  if (r.opened.streams != static_cast<uint64_t>(n)) {
    return "/healthz counts " + std::to_string(r.opened.streams) + " xDS streams with " + std::to_string(n) +
           " open";
  }

  Writer writer(server);
  const double server_cpu = CpuSeconds(pid);
  const double client_cpu = CpuSeconds(getpid());
  for (int k = 0; k < p.xds_changes; ++k) {
    const std::string text = FormatRequest(
        {"PUT", wire::InstancePath(kService, kIdPrefix + std::to_string(k)), InstanceBody(k, 3600)});
    const auto i = static_cast<size_t>(k);
    const auto sent = Clock::now();
    shared.sent_ns[i] = NowNs();
    const unsigned status = writer.Send(text);
    r.write.Add(Clock::now() - sent);
    if (status / 100 != 2) return "register answered HTTP " + std::to_string(status);
    if (!WaitUntil(sent + kChangeTimeout,
                   [&] { return shared.seen[i].load(std::memory_order_acquire) >= n; })) {
      return "change " + std::to_string(k) + " reached " + std::to_string(shared.seen[i].load()) + " of " +
             std::to_string(n) + " streams in 10 s";
    }
    ++r.changes;
    if (k + 1 == p.xds_changes) {
      r.server_cpu_s = CpuSeconds(pid) - server_cpu;
      r.client_cpu_s = CpuSeconds(getpid()) - client_cpu;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  // Every ACK counted (each response is ACKed once), then the figures.
  WaitUntil(Clock::now() + std::chrono::seconds(5), [&] {
    r.after = ReadXdsHealth(server);
    return r.after.acks >= r.after.responses;
  });
  r.rss_after = RssBytes(pid);
  if (r.after.streams != static_cast<uint64_t>(n)) {
    return "/healthz counts " + std::to_string(r.after.streams) + " xDS streams after the changes, not " +
           std::to_string(n);
  }
  if (r.after.nacks != 0) return "musterd counted " + std::to_string(r.after.nacks) + " NACKs";
  return "";
}

}  // namespace

XdsHealth ReadXdsHealth(const tcp::endpoint& server) {
  XdsHealth h;
  std::string body;
  if (HttpOnce(server, {"GET", "/healthz", ""}, &body) != 200) return h;
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(body, ec);
  if (ec || !doc.is_object()) return h;
  const boost::json::value* xds = doc.as_object().if_contains("xds");
  if (xds == nullptr || !xds->is_object()) return h;
  const boost::json::object& x = xds->as_object();
  auto count = [&](const char* key) -> uint64_t {
    const boost::json::value* v = x.if_contains(key);
    return v != nullptr && v->is_number() ? v->to_number<uint64_t>() : 0;
  };
  if (const boost::json::value* a = x.if_contains("address"); a != nullptr && a->is_string()) {
    h.address = std::string(a->as_string());
  }
  h.streams = count("streams");
  h.streams_total = count("streams_total");
  h.refused = count("refused");
  h.responses = count("responses");
  h.acks = count("acks");
  h.nacks = count("nacks");
  h.read = true;
  return h;
}

XdsFanoutResult RunXdsFanout(const tcp::endpoint& server, pid_t pid, const Params& p) {
  XdsFanoutResult r;
  r.streams = p.xds_streams;
  const XdsHealth before = ReadXdsHealth(server);
  if (!before.read || before.address.empty()) {
    r.error = "/healthz has no xDS address (is musterd started with --xds-listen?)";
    return r;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  r.rss_base = RssBytes(pid);
  r.threads_base = ThreadCount(pid);

  const int per_channel = std::max(1, p.xds_streams_per_channel);
  r.channels = (p.xds_streams + per_channel - 1) / per_channel;
  auto channels = MakeChannels(before.address, std::max(1, r.channels));
  Shared shared(p.xds_streams, p.xds_changes);
  XdsStreams::Hooks hooks;
  hooks.ready = [&shared] { shared.ready.fetch_add(1, std::memory_order_release); };
  hooks.failed = [&shared] { shared.failed.fetch_add(1); };
  hooks.arrived = [&shared](int stream, int nth) { shared.Arrived(stream, nth); };
  XdsStreams streams(channels, kService, kIdPrefix, p.xds_streams, std::move(hooks));

  const auto open_begin = Clock::now();
  std::thread driver([&] {
    try {
      r.error = Drive(server, pid, p, shared, r, open_begin);
    } catch (const std::exception& e) {
      r.error = e.what();
    }
    streams.Cancel();
  });
  streams.Run();
  driver.join();
  r.push_bytes = streams.counts().largest;

  // Latencies of the changes every stream received.
  const auto changes = static_cast<size_t>(p.xds_changes);
  for (size_t k = 0; k < static_cast<size_t>(r.changes); ++k) {
    int64_t first = std::numeric_limits<int64_t>::max(), last = kNotYet;
    for (size_t s = 0; s < static_cast<size_t>(p.xds_streams); ++s) {
      const int64_t at = shared.arrival_ns[s * changes + k];
      if (at == kNotYet) continue;
      const int64_t ns = at - shared.sent_ns[k];
      r.per_stream.AddMs(static_cast<double>(ns) / 1e6);
      first = std::min(first, ns);
      last = std::max(last, ns);
    }
    r.first.AddMs(static_cast<double>(first) / 1e6);
    r.last.AddMs(static_cast<double>(last) / 1e6);
  }
  return r;
}

Figures XdsFanoutFigures(XdsFanoutResult& r, int changes_wanted) {
  Figures f;
  if (!r.error.empty() || r.ready < r.streams || r.changes < changes_wanted || r.streams <= 0) {
    f.note = "streams ready " + std::to_string(r.ready) + "/" + std::to_string(r.streams) +
             ", changes delivered " + std::to_string(r.changes) + "/" + std::to_string(changes_wanted) +
             (r.error.empty() ? "" : ": " + r.error);
    return f;
  }
  constexpr double kMiB = 1024.0 * 1024.0;
  const double pushes = static_cast<double>(r.changes) * r.streams;
  f.value = r.last.QuantileMs(0.5);
  f.extra = {{"p99_ms", r.last.QuantileMs(0.99)},
             {"max_ms", r.last.MaxMs()},
             {"stream_p50_ms", r.per_stream.QuantileMs(0.5)},
             {"stream_p99_ms", r.per_stream.QuantileMs(0.99)},
             {"stream_max_ms", r.per_stream.MaxMs()},
             {"first_p50_ms", r.first.QuantileMs(0.5)},
             {"write_p50_ms", r.write.QuantileMs(0.5)},
             {"streams", static_cast<double>(r.streams)},
             {"channels", static_cast<double>(r.channels)},
             {"bytes_per_stream",
              (static_cast<double>(r.rss_streams) - static_cast<double>(r.rss_base)) / r.streams},
             {"rss_base_mb", static_cast<double>(r.rss_base) / kMiB},
             {"rss_streams_mb", static_cast<double>(r.rss_streams) / kMiB},
             {"rss_after_mb", static_cast<double>(r.rss_after) / kMiB},
             {"push_bytes", static_cast<double>(r.push_bytes)},
             {"threads_base", static_cast<double>(r.threads_base)},
             {"threads_streams", static_cast<double>(r.threads_streams)},
             {"open_ms", r.open_ms},
             {"server_us_per_push", r.server_cpu_s * 1e6 / pushes},
             {"client_us_per_push", r.client_cpu_s * 1e6 / pushes},
             {"healthz_streams", static_cast<double>(r.opened.streams)},
             {"responses", static_cast<double>(r.after.responses)},
             {"acks", static_cast<double>(r.after.acks)},
             {"nacks", static_cast<double>(r.after.nacks)}};
  return f;
}

}  // namespace muster::bench
