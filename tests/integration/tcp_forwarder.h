// A loopback TCP forwarder for integration tests: listens on a port that stays
// the same for the test's whole life and relays every connection to an
// upstream host:port that the test may change. A restarted musterd comes up
// on a new port (MusterdProcess binds port 0); pointing the forwarder at it
// lets an SDK client configured with one fixed address reach "the same
// registry" again. It also stages network failures: it can cut every
// connection and refuse new ones (SetBlocked), or silence connections without
// closing them (SetSilent), as a peer that vanished without a FIN or RST.
//
// Example:
//   TcpForwarder forwarder;
//   forwarder.SetTarget(musterd.port());
//   auto registry = NewMusterRegistry({.addresses = {forwarder.address()}});
//   musterd.Kill9();                     // relayed connections break
//   musterd.Restart();
//   forwarder.SetTarget(musterd.port());  // new connections reach it
//
// A connection accepted while the upstream refuses is closed at once, as a
// connection to a dead server would be refused. One thread per relayed
// connection (tests open few); every method is thread-safe.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace muster::testing {

// Binds a TCP socket to 127.0.0.1 on a free port; -1 on failure.
inline int BindLoopback(uint16_t* port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return -1;
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

class TcpForwarder {
 public:
  // `upstream`: host:port (IPv4) to relay to; empty: nowhere yet (refused).
  explicit TcpForwarder(std::string upstream = "") : upstream_(std::move(upstream)) {
    uint16_t port = 0;
    listen_fd_ = BindLoopback(&port);
    EXPECT_GE(listen_fd_, 0) << std::strerror(errno);
    EXPECT_EQ(listen(listen_fd_, 64), 0) << std::strerror(errno);
    address_ = "127.0.0.1:" + std::to_string(port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }

  ~TcpForwarder() {
    stop_ = true;
    acceptor_.join();
    {
      std::lock_guard lock(mu_);
      CutLocked();
    }
    std::vector<std::thread> pumps;
    {
      std::lock_guard lock(mu_);
      pumps.swap(pumps_);
    }
    for (auto& t : pumps) t.join();
    close(listen_fd_);
  }

  TcpForwarder(const TcpForwarder&) = delete;
  TcpForwarder& operator=(const TcpForwarder&) = delete;

  const std::string& address() const { return address_; }

  // Where connections accepted from now on go.
  void SetUpstream(std::string upstream) {
    std::lock_guard lock(mu_);
    upstream_ = std::move(upstream);
  }
  void SetTarget(uint16_t port) { SetUpstream("127.0.0.1:" + std::to_string(port)); }

  // While blocked, open connections are cut and new ones closed at once.
  void SetBlocked(bool blocked) {
    std::lock_guard lock(mu_);
    blocked_ = blocked;
    if (blocked) CutLocked();
  }

  // While silent, the connections open now and those accepted meanwhile go
  // quiet for good: they stay open but no byte passes either way, as when the
  // peer vanished without a FIN or RST. Connections accepted later work.
  void SetSilent(bool silent) {
    std::lock_guard lock(mu_);
    silent_ = silent;
    if (silent) silenced_.insert(open_fds_.begin(), open_fds_.end());
  }

 private:
  void CutLocked() {
    for (int fd : open_fds_) shutdown(fd, SHUT_RDWR);  // the pump closes them
  }

  bool IsSilenced(int fd) {
    std::lock_guard lock(mu_);
    return silenced_.contains(fd);
  }

  void AcceptLoop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      std::lock_guard lock(mu_);
      if (blocked_) {
        close(fd);
        continue;
      }
      pumps_.emplace_back([this, fd, upstream = upstream_] { Pump(fd, upstream); });
    }
  }

  static int ConnectTo(const std::string& address) {
    size_t colon = address.rfind(':');
    if (colon == std::string::npos) return -1;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
    if (inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr) != 1) return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      close(fd);
      return -1;
    }
    return fd;
  }

  void Pump(int client, const std::string& upstream) {
    int server = ConnectTo(upstream);
    if (server < 0) {
      close(client);
      return;
    }
    {
      std::lock_guard lock(mu_);
      if (blocked_ || stop_) {
        close(client);
        close(server);
        return;
      }
      open_fds_.insert(client);
      open_fds_.insert(server);
      if (silent_) silenced_.insert(client);
    }
    char buf[16384];
    bool open = true;
    while (open && !stop_) {
      if (IsSilenced(client)) {
        poll(nullptr, 0, 50);
        continue;
      }
      pollfd p[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
      if (poll(p, 2, 50) <= 0 || IsSilenced(client)) continue;  // silenced while it polled
      for (int i = 0; i < 2 && open; ++i) {
        if (p[i].revents == 0) continue;
        ssize_t n = read(p[i].fd, buf, sizeof buf);
        if (n <= 0) {
          open = false;
          break;
        }
        int to = i == 0 ? server : client;
        for (ssize_t sent = 0; sent < n;) {
          ssize_t w = send(to, buf + sent, static_cast<size_t>(n - sent), MSG_NOSIGNAL);
          if (w <= 0) {
            open = false;
            break;
          }
          sent += w;
        }
      }
    }
    {
      std::lock_guard lock(mu_);
      open_fds_.erase(client);
      open_fds_.erase(server);
      silenced_.erase(client);
      silenced_.erase(server);
    }
    close(client);
    close(server);
  }

  int listen_fd_ = -1;
  std::string address_;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;

  std::mutex mu_;
  std::string upstream_;            // guarded by mu_
  bool blocked_ = false;            // guarded by mu_
  bool silent_ = false;             // guarded by mu_
  std::set<int> open_fds_;          // guarded by mu_
  std::set<int> silenced_;          // guarded by mu_: relay nothing any more
  std::vector<std::thread> pumps_;  // guarded by mu_
};

}  // namespace muster::testing
