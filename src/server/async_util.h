// Small bridges between the registry's callback world and Asio coroutines.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/as_tuple.hpp>

namespace muster {

namespace asio = boost::asio;
using asio::awaitable;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// Starts `start(callback)` and suspends until the callback runs (on any
// thread), resuming on the coroutine's own executor with the value passed.
template <typename R, typename Start>
awaitable<R> AwaitCallback(Start start) {
  return asio::async_initiate<decltype(asio::use_awaitable), void(R)>(
      [start = std::move(start)](auto handler) mutable {
        auto executor = asio::get_associated_executor(handler);
        start([handler = std::move(handler), executor](R result) mutable {
          asio::post(executor, [handler = std::move(handler), result = std::move(result)]() mutable {
            std::move(handler)(std::move(result));
          });
        });
      },
      asio::use_awaitable);
}

// A wake-up signal for one coroutine, bound to its executor.
// Usage: Arm(deadline); check the condition; if unmet, co_await Wait(). A
// Notify() from any thread after Arm makes Wait return at once, so no wake-up
// is lost between the check and the wait.
class Wakeup {
 public:
  explicit Wakeup(asio::any_io_executor executor)
      : timer_(std::make_shared<asio::steady_timer>(std::move(executor))) {}

  void Arm(asio::steady_timer::time_point deadline) { timer_->expires_at(deadline); }

  awaitable<void> Wait() { co_await timer_->async_wait(use_tuple); }

  // A thread-safe callable that wakes the waiter; it keeps the timer alive.
  std::function<void()> Notifier() const {
    return [timer = timer_] {
      asio::post(timer->get_executor(),
                 [timer] { timer->expires_at(asio::steady_timer::time_point()); });
    };
  }

 private:
  std::shared_ptr<asio::steady_timer> timer_;
};

}  // namespace muster
