// musterd's HTTP/1.1 server: an acceptor and one coroutine per connection on
// a small pool of I/O threads (no thread per connection), keep-alive, timeouts
// for idle and slow clients, and a graceful shutdown.
//
// Each I/O thread runs an io_context of its own, and each connection lives on
// one of them (round robin as they are accepted): everything a connection
// does runs on one thread, in order, with no strand to take and no hand-off
// between threads. The first context also runs the acceptor, the shutdown
// and the health checks.
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
#include "server/connection_table.h"
#include "server/http_request.h"

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

  // The first I/O thread's executor (for other asynchronous work, e.g.
  // health checks).
  asio::any_io_executor executor() { return ioc_.get_executor(); }
  // See ApiHandler::SetHealthChecker. Before Run.
  void SetHealthChecker(HealthChecker* checker) { api_.SetHealthChecker(checker); }
  // See ApiHandler::SetWebhookNotifier. Before Run.
  void SetWebhookNotifier(const WebhookNotifier* webhooks) { api_.SetWebhookNotifier(webhooks); }
  // See ApiHandler::SetXdsServer. Before Run.
  void SetXdsServer(const xds::XdsServer* xds) { api_.SetXdsServer(xds); }

 private:
  awaitable<void> Accept();
  awaitable<void> Session(asio::ip::tcp::socket socket);
  // A watch stream on a connection Session handed over; closes it at the end.
  awaitable<void> Watch(beast::tcp_stream stream, ApiHandler::WatchStream watch,
                        ConnectionTable::Registration connection);
  awaitable<void> AwaitDrain();
  // Where the next accepted connection lives (on control_ only).
  asio::io_context::executor_type NextExecutor();

  const ServerConfig& config_;
  ApiHandler api_;
  HostPolicy hosts_;  // set by Listen
  ConnectionTable connections_;
  // The other I/O threads' contexts, and what keeps them running until the
  // shutdown stops them. Made by Run before serving.
  // Declared before ioc_, so destroyed after it: an accept still queued on
  // ioc_ when it is destroyed holds a socket of a worker's context, and
  // destroying that accept needs the worker's socket service.
  std::vector<std::unique_ptr<asio::io_context>> workers_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> worker_guards_;
  size_t next_context_ = 0;  // on control_ only
  asio::io_context ioc_{1};  // run by the thread that calls Run
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
