// Targets for health checks, served on 127.0.0.1 by a thread of the test:
// an HTTP server whose answer the test changes, and a TCP port the test opens
// and closes.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

namespace muster::testing {

// Answers every request with the current status (and a short body), then
// closes the connection.
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

 private:
  void Serve();

  int listener_ = -1;
  uint16_t port_ = 0;
  std::atomic<int> status_{200};
  std::atomic<int> requests_{0};
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

}  // namespace muster::testing
