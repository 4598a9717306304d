// Targets for health checks, served on 127.0.0.1 by a thread of the test:
// an HTTP server whose answer the test changes (and that keeps what was
// POSTed to it: a webhook receiver), a TCP port the test opens and closes, a
// port that never answers, and a gRPC server with the standard health
// service.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

namespace muster::testing {

// Answers every request with the current status (and a short body), then
// closes the connection. Keeps the body of every request.
class HttpTarget {
 public:
  HttpTarget();  // listens on 127.0.0.1, a free port
  ~HttpTarget();
  HttpTarget(const HttpTarget&) = delete;
  HttpTarget& operator=(const HttpTarget&) = delete;

  void set_status(int status) { status_ = status; }
  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // Requests answered so far.
  int requests() const { return requests_; }
  // The bodies of the requests answered so far, in order.
  std::vector<std::string> bodies() const;
  // Waits up to `timeout` until `done(bodies())` holds.
  bool WaitForBodies(const std::function<bool(const std::vector<std::string>&)>& done,
                     std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;

 private:
  void Serve();

  int listener_ = -1;
  uint16_t port_ = 0;
  std::atomic<int> status_{200};
  std::atomic<int> requests_{0};
  mutable std::mutex mu_;
  std::vector<std::string> bodies_;  // guarded by mu_
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// A listening TCP port that can be closed and opened again on the same port.
// Connections are accepted and closed at once.
class TcpTarget {
 public:
  TcpTarget();  // open, on a free port
  ~TcpTarget();
  TcpTarget(const TcpTarget&) = delete;
  TcpTarget& operator=(const TcpTarget&) = delete;

  void Close();
  void Open();  // again, on the same port
  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// A listening port that never accepts: a connection completes (the kernel's
// backlog) and then hears nothing, like a hung server.
class SilentPort {
 public:
  SilentPort();
  ~SilentPort();
  SilentPort(const SilentPort&) = delete;
  SilentPort& operator=(const SilentPort&) = delete;

  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// A gRPC server on 127.0.0.1 with only gRPC's own health service
// (grpc.health.v1.Health), whose serving status per service the test sets.
class GrpcHealthTarget {
 public:
  explicit GrpcHealthTarget(int port = 0);  // 0: any free port
  ~GrpcHealthTarget();
  GrpcHealthTarget(const GrpcHealthTarget&) = delete;
  GrpcHealthTarget& operator=(const GrpcHealthTarget&) = delete;

  bool started() const { return server_ != nullptr && port_ != 0; }
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // "" is the server as a whole.
  void SetServing(const std::string& service, bool serving);
  void Stop();

 private:
  // gRPC starts a server only with some service its threads serve; this one
  // answers UNIMPLEMENTED to everything but health.
  grpc::CallbackGenericService unimplemented_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace muster::testing
