// The TCP check: passing when a connection to host:port opens within the
// timeout; the connection is closed at once, nothing is sent.
#include <chrono>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "core/duration.h"
#include "core/strings.h"
#include "server/async_util.h"
#include "server/health/probe.h"
#include "server/health/strand_probe.h"

namespace muster {
namespace {

using tcp = asio::ip::tcp;
using boost::system::error_code;

class TcpProbe;

// One run: lives until its coroutine ends; touched only on `strand`.
struct TcpRun {
  TcpRun(std::shared_ptr<TcpProbe> p, asio::any_io_executor ex, std::chrono::milliseconds t,
         ProbeCallback d)
      : probe(std::move(p)),
        strand(std::move(ex)),
        timeout(t),
        done(std::move(d)),
        resolver(strand),
        socket(strand),
        watchdog(strand) {}

  // Reports `result` unless a result went out already. On the strand.
  void Finish(ProbeResult result) {
    if (finished) return;
    finished = true;
    watchdog.cancel();
    resolver.cancel();
    error_code ignored;
    socket.close(ignored);
    result.output = BoundedOutput(std::move(result.output), "TCP check failed");
    std::move(done)(std::move(result));
  }

  // Ends the run now (timeout, Cancel): `done` does not wait for the step
  // in progress (a name lookup cannot be interrupted). On the strand.
  void Stop(std::string reason) { Finish({Health::kCritical, std::move(reason)}); }

  const std::shared_ptr<TcpProbe> probe;  // kept alive while the run is in flight
  const asio::strand<asio::any_io_executor> strand;
  const std::chrono::milliseconds timeout;
  ProbeCallback done;
  tcp::resolver resolver;
  tcp::socket socket;
  asio::steady_timer watchdog;
  bool finished = false;  // `done` ran
};

class TcpProbe final : public StrandProbe<TcpProbe, TcpRun> {
 public:
  TcpProbe(std::string endpoint, std::string host, uint16_t port, asio::any_io_executor executor)
      : StrandProbe(std::move(executor)),
        endpoint_(std::move(endpoint)),
        host_(std::move(host)),
        port_(port) {}

 private:
  friend class StrandProbe<TcpProbe, TcpRun>;
  static awaitable<void> Go(std::shared_ptr<TcpRun> run);
  static awaitable<ProbeResult> Attempt(TcpRun& run);

  // Constant after construction.
  const std::string endpoint_;  // host:port, as the check names it
  const std::string host_;      // without IPv6 brackets
  const uint16_t port_;
};

awaitable<void> TcpProbe::Go(std::shared_ptr<TcpRun> run) {
  run->watchdog.expires_after(run->timeout);
  run->watchdog.async_wait([run](error_code ec) {
    if (!ec) {
      run->Stop(StrCat("timed out after ", FormatDuration(run->timeout), " (TCP connect to ",
                       run->probe->endpoint_, ")"));
    }
  });
  ProbeResult result;
  try {
    result = co_await Attempt(*run);
  } catch (const std::exception& e) {
    result = {Health::kCritical, StrCat("internal error: ", e.what())};
  }
  run->Finish(std::move(result));
}

// After each step: a run that was stopped meanwhile has reported already.
awaitable<ProbeResult> TcpProbe::Attempt(TcpRun& run) {
  const TcpProbe& self = *run.probe;
  const std::string what = StrCat("TCP connect to ", self.endpoint_, ": ");
  if (run.finished) co_return ProbeResult{};
  tcp::resolver::results_type endpoints;
  error_code not_ip;
  const asio::ip::address address = asio::ip::make_address(self.host_, not_ip);
  if (!not_ip) {
    // An IP address needs no lookup (and no turn on Asio's one resolver thread).
    endpoints = tcp::resolver::results_type::create(tcp::endpoint(address, self.port_),
                                                    self.host_, StrCat(self.port_));
  } else {
    auto [resolve_error, found] =
        co_await run.resolver.async_resolve(self.host_, StrCat(self.port_), use_tuple);
    if (run.finished) co_return ProbeResult{};
    if (resolve_error) {
      co_return ProbeResult{Health::kCritical,
                            StrCat(what, "resolve ", self.host_, ": ", resolve_error.message())};
    }
    endpoints = std::move(found);
  }
  auto [connect_error, endpoint] = co_await asio::async_connect(run.socket, endpoints, use_tuple);
  if (run.finished) co_return ProbeResult{};
  if (connect_error) co_return ProbeResult{Health::kCritical, StrCat(what, connect_error.message())};
  co_return ProbeResult{Health::kPassing, StrCat(what, "ok")};
}

}  // namespace

absl::StatusOr<std::shared_ptr<Probe>> MakeTcpProbe(const Check& check, const Instance& instance,
                                                    const ProbeEnvironment& env) {
  auto target = DialTargetOf(check, instance);
  if (!target.ok()) return target.status();
  return std::make_shared<TcpProbe>(std::move(target->endpoint), std::move(target->host),
                                    target->port, env.executor);
}

}  // namespace muster
