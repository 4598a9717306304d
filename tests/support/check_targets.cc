#include "support/check_targets.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

namespace muster::testing {
namespace {

// A listening socket on 127.0.0.1:port (0: any free port); returns the fd
// and sets `port` to the one bound.
int Listen(uint16_t& port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 64) != 0) {
    ::close(fd);
    throw std::runtime_error(std::string("bind/listen failed: ") + std::strerror(errno));
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  port = ntohs(addr.sin_port);
  return fd;
}

const char* Reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

}  // namespace

HttpTarget::HttpTarget() {
  listener_ = Listen(port_);
  thread_ = std::thread([this] { Serve(); });
}

HttpTarget::~HttpTarget() {
  stopping_ = true;
  ::shutdown(listener_, SHUT_RDWR);
  thread_.join();
  ::close(listener_);
}

void HttpTarget::Serve() {
  while (!stopping_) {
    pollfd p{listener_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    int conn = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) continue;
    // Read the request head (bounded, with a short timeout), then answer.
    std::string request;
    char buf[2048];
    while (request.find("\r\n\r\n") == std::string::npos && request.size() < 16384) {
      pollfd c{conn, POLLIN, 0};
      if (::poll(&c, 1, 1000) <= 0) break;
      ssize_t n = ::recv(conn, buf, sizeof buf, 0);
      if (n <= 0) break;
      request.append(buf, static_cast<size_t>(n));
    }
    const int status = status_;
    const std::string body = "status " + std::to_string(status) + "\n";
    const std::string response = "HTTP/1.1 " + std::to_string(status) + " " + Reason(status) +
                                 "\r\nContent-Type: text/plain\r\nContent-Length: " +
                                 std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    ::send(conn, response.data(), response.size(), MSG_NOSIGNAL);
    ++requests_;
    ::shutdown(conn, SHUT_WR);
    ::close(conn);
  }
}

TcpTarget::TcpTarget() { Open(); }

TcpTarget::~TcpTarget() { Close(); }

void TcpTarget::Close() {
  if (fd_ < 0) return;
  stopping_ = true;
  thread_.join();
  ::close(fd_);
  fd_ = -1;
}

void TcpTarget::Open() {
  if (fd_ >= 0) return;
  fd_ = Listen(port_);
  stopping_ = false;
  thread_ = std::thread([this] {
    while (!stopping_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int conn = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn >= 0) ::close(conn);
    }
  });
}

}  // namespace muster::testing
