// musterd's HTTP/1.1 server: an acceptor and one coroutine per connection on
// a small pool of I/O threads (no thread per connection), keep-alive, timeouts
// for idle and slow clients, and a graceful shutdown.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "server/api_handler.h"
#include "server/async_util.h"
#include "server/config.h"

namespace muster {

class HttpServer {
 public:
  HttpServer(const ServerConfig& config, Catalog& catalog);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds the listening socket; returns the address bound (with the real port
  // when the configured one was 0).
  absl::StatusOr<std::string> Listen();

  // Serves on `threads` I/O threads until a shutdown completes. SIGINT and
  // SIGTERM start the shutdown: stop accepting, end waiting requests and
  // watches, let in-flight requests finish (up to the shutdown grace), return.
  void Run(unsigned threads);

  // Starts the shutdown from any thread.
  void Shutdown();

  // The I/O threads' executor (for other asynchronous work, e.g. health checks).
  asio::any_io_executor executor() { return ioc_.get_executor(); }
  // See ApiHandler::SetHealthChecker. Before Run.
  void SetHealthChecker(const HealthChecker* checker) { api_.SetHealthChecker(checker); }
  // See ApiHandler::SetWebhookNotifier. Before Run.
  void SetWebhookNotifier(const WebhookNotifier* webhooks) { api_.SetWebhookNotifier(webhooks); }

 private:
  awaitable<void> Accept();
  awaitable<void> Session(asio::ip::tcp::socket socket);
  // A watch stream on a connection Session handed over; closes it at the end.
  awaitable<void> Watch(beast::tcp_stream stream, ApiHandler::WatchStream watch);
  awaitable<void> AwaitDrain();

  const ServerConfig& config_;
  ApiHandler api_;
  asio::io_context ioc_;
  // The acceptor, the signal set and the shutdown steps run on this strand, so
  // closing the acceptor never races an accept completing on another thread.
  asio::strand<asio::io_context::executor_type> control_;
  asio::ip::tcp::acceptor acceptor_;
  asio::signal_set signals_;
  // Requests read and not yet answered (watches included).
  std::atomic<int> in_flight_{0};
  std::atomic<bool> shutting_down_{false};
};

}  // namespace muster
