// The Run/Cancel bookkeeping that the Asio probes (HTTP, TCP, script) share.
// Each Run makes a fresh run state on a strand of its own and starts the
// probe's coroutine there; Cancel stops the run in flight and, for good,
// every later one (its check went away).
//
// A probe derives as
//   class TcpProbe final : public StrandProbe<TcpProbe, TcpRun> { ... };
// where TcpRun is constructed from (std::shared_ptr<TcpProbe>, strand,
// timeout, ProbeCallback), has a `strand` member and a Stop(std::string
// reason) that reports critical at once (on the strand), and TcpProbe has
//   static awaitable<void> Go(std::shared_ptr<TcpRun> run);
// (it may be private, with StrandProbe a friend).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "core/mutex.h"
#include "server/async_util.h"
#include "server/health/probe.h"

namespace muster {

template <typename Derived, typename RunState>
class StrandProbe : public Probe, public std::enable_shared_from_this<Derived> {
 public:
  explicit StrandProbe(asio::any_io_executor executor) : executor_(std::move(executor)) {}

  void Run(std::chrono::milliseconds timeout, ProbeCallback done) final {
    auto run = std::make_shared<RunState>(this->shared_from_this(), asio::make_strand(executor_),
                                          timeout, std::move(done));
    {
      MutexLock lock(mu_);
      current_ = run;
      // Cancelled for good: later runs end at once, before they do anything.
      if (cancelled_) asio::post(run->strand, [run] { run->Stop("cancelled"); });
    }
    asio::co_spawn(run->strand, Derived::Go(run), asio::detached);
  }

  void Cancel() final {
    MutexLock lock(mu_);
    cancelled_ = true;
    if (auto run = current_.lock()) asio::post(run->strand, [run] { run->Stop("cancelled"); });
  }

 private:
  const asio::any_io_executor executor_;

  Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::weak_ptr<RunState> current_ ABSL_GUARDED_BY(mu_);  // the run in flight, if any
};

}  // namespace muster
