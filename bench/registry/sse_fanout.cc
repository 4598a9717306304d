// Watch fan-out over musterd's SSE stream (see sse_fanout.h).
#include "registry/sse_fanout.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include "registry/http_load.h"
#include "registry/scenario.h"
#include "registry/sse_watch.h"
#include "core/wire/paths.h"

namespace muster::bench {
namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::ip::tcp;

namespace {

// Watchers connecting at once: below the listen backlog.
constexpr int kConnectBatch = 200;
constexpr auto kChangeTimeout = std::chrono::seconds(10);

struct State {
  std::vector<int> seen;                        // per change: watchers that have it
  std::vector<Clock::time_point> first_arrival;  // per change
  std::vector<Clock::time_point> last_arrival;   // per change
  int ready = 0;
  int failed = 0;
  std::string error;
  SseHooks hooks;
};

void Arrived(State& s, int index) {
  if (index >= static_cast<int>(s.seen.size())) return;
  const auto now = Clock::now();
  auto i = static_cast<size_t>(index);
  if (s.seen[i]++ == 0) s.first_arrival[i] = now;
  s.last_arrival[i] = now;
}

asio::awaitable<void> Wait(std::chrono::milliseconds d) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  co_await timer.async_wait(asio::use_awaitable);
}

asio::awaitable<void> Driver(tcp::endpoint server, int watchers, int changes, State& s,
                             FanoutResult& result) {
  auto executor = co_await asio::this_coro::executor;
  // In State, which outlives the watchers' coroutines.
  SseHooks& hooks = s.hooks;
  hooks.opened = [&s] { ++s.ready; };
  hooks.failed = [&s](const std::string& error) {
    ++s.failed;
    if (s.error.empty()) s.error = error;
  };
  hooks.event = [&s](int nth) { Arrived(s, nth); };
  for (int started = 0; started < watchers;) {
    const int batch = std::min(kConnectBatch, watchers - started);
    for (int i = 0; i < batch; ++i) asio::co_spawn(executor, SseWatch(server, "fan", "", hooks), asio::detached);
    started += batch;
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (s.ready + s.failed < started && Clock::now() < deadline) {
      co_await Wait(std::chrono::milliseconds(2));
    }
    if (s.failed > 0 || s.ready < started) break;
  }
  result.ready = s.ready;
  if (s.ready < watchers) {
    if (s.error.empty()) s.error = "not every watch stream opened";
    co_return;
  }
  co_await Wait(std::chrono::milliseconds(500));

  tcp::socket writer(executor);
  co_await writer.async_connect(server, asio::use_awaitable);
  boost::beast::flat_buffer buffer;
  for (int k = 0; k < changes; ++k) {
    const std::string request = FormatRequest(
        {"PUT", wire::InstancePath("fan", "w-" + std::to_string(k)), InstanceBody(k, 30)});
    const auto sent = Clock::now();
    co_await asio::async_write(writer, asio::buffer(request), asio::use_awaitable);
    http::response<http::string_body> answer;
    co_await http::async_read(writer, buffer, answer, asio::use_awaitable);
    result.write.Add(Clock::now() - sent);
    if (answer.result_int() / 100 != 2) {
      s.error = "register answered HTTP " + std::to_string(answer.result_int());
      co_return;
    }
    const auto deadline = sent + kChangeTimeout;
    const auto i = static_cast<size_t>(k);
    while (s.seen[i] < watchers && Clock::now() < deadline) co_await Wait(std::chrono::milliseconds(1));
    if (s.seen[i] < watchers) {
      s.error = "change " + std::to_string(k) + " reached " + std::to_string(s.seen[i]) + " watchers in 10 s";
      co_return;
    }
    result.last.Add(s.last_arrival[i] - sent);
    result.first.Add(s.first_arrival[i] - sent);
    ++result.changes;
    co_await Wait(std::chrono::milliseconds(50));
  }
}

}  // namespace

FanoutResult RunSseFanout(const tcp::endpoint& server, int watchers, int changes) {
  FanoutResult result;
  result.watchers = watchers;
  State s;
  s.seen.assign(static_cast<size_t>(changes), 0);
  s.first_arrival.resize(static_cast<size_t>(changes));
  s.last_arrival.resize(static_cast<size_t>(changes));
  asio::io_context io(1);
  asio::co_spawn(io, Driver(server, watchers, changes, s, result), [&](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        s.error = ex.what();
      }
    }
    io.stop();
  });
  io.run();
  result.error = s.error;
  return result;
}

}  // namespace muster::bench
