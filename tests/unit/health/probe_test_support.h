// What the probe tests share: the I/O threads a probe runs on (two, as in
// musterd), a run awaited with a bound, and a readable form of its result.
#pragma once

#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/strings.h"
#include "server/async_util.h"
#include "server/health/probe.h"

namespace muster::probe_test {

// Far above any timeout a test gives a probe that should end by itself; a
// run that takes this long failed to report.
inline constexpr std::chrono::milliseconds kWait{20000};

// An io_context with two threads.
class IoThreads {
 public:
  IoThreads() : work_(asio::make_work_guard(ioc_)) {
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { ioc_.run(); });
  }
  ~IoThreads() {
    work_.reset();
    ioc_.stop();
    for (auto& t : threads_) t.join();
  }
  IoThreads(const IoThreads&) = delete;
  IoThreads& operator=(const IoThreads&) = delete;
  asio::any_io_executor executor() { return ioc_.get_executor(); }

 private:
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
};

// A run in flight; Wait() gives its result, or nullopt if `done` did not run
// within kWait.
class PendingRun {
 public:
  PendingRun(Probe& probe, std::chrono::milliseconds timeout)
      : promise_(std::make_shared<std::promise<ProbeResult>>()), future_(promise_->get_future()) {
    probe.Run(timeout, [p = promise_](ProbeResult r) { p->set_value(std::move(r)); });
  }
  std::optional<ProbeResult> Wait() {
    if (future_.wait_for(kWait) != std::future_status::ready) return std::nullopt;
    return future_.get();
  }

 private:
  std::shared_ptr<std::promise<ProbeResult>> promise_;
  std::future<ProbeResult> future_;
};

// "passing: HTTP 200 OK", for readable failures.
inline std::string Describe(const std::optional<ProbeResult>& r) {
  if (!r) return "no result";
  return StrCat(ToString(r->status), ": ", r->output);
}

}  // namespace muster::probe_test
