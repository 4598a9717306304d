#include "support/check_targets.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <cstring>
#include <stdexcept>

#include <grpcpp/health_check_service_interface.h>

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
    // Read the request (bounded, with a short timeout), then answer.
    std::string request;
    char buf[2048];
    size_t head_end = std::string::npos;
    size_t want = 0;  // the whole request, once the head is known
    while (request.size() < 1 << 20 && (head_end == std::string::npos || request.size() < want)) {
      pollfd c{conn, POLLIN, 0};
      if (::poll(&c, 1, 1000) <= 0) break;
      ssize_t n = ::recv(conn, buf, sizeof buf, 0);
      if (n <= 0) break;
      request.append(buf, static_cast<size_t>(n));
      if (head_end == std::string::npos && (head_end = request.find("\r\n\r\n")) != std::string::npos) {
        size_t length = 0;
        for (const char* name : {"\r\nContent-Length:", "\r\ncontent-length:"}) {
          size_t at = request.find(name);
          if (at == std::string::npos || at > head_end) continue;
          const char* from = request.data() + at + std::strlen(name);
          while (*from == ' ') ++from;
          std::from_chars(from, request.data() + head_end, length);
        }
        want = head_end + 4 + length;
      }
    }
    if (head_end != std::string::npos) {
      std::lock_guard lock(mu_);
      bodies_.push_back(request.substr(std::min(request.size(), head_end + 4)));
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

std::vector<std::string> HttpTarget::bodies() const {
  std::lock_guard lock(mu_);
  return bodies_;
}

bool HttpTarget::WaitForBodies(const std::function<bool(const std::vector<std::string>&)>& done,
                               std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done(bodies())) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
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

SilentPort::SilentPort() { fd_ = Listen(port_); }

SilentPort::~SilentPort() { ::close(fd_); }

GrpcHealthTarget::GrpcHealthTarget(int port) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.RegisterCallbackGenericService(&unimplemented_);
  builder.AddListeningPort("127.0.0.1:" + std::to_string(port), grpc::InsecureServerCredentials(),
                           &port_);
  server_ = builder.BuildAndStart();
}

GrpcHealthTarget::~GrpcHealthTarget() { Stop(); }

void GrpcHealthTarget::SetServing(const std::string& service, bool serving) {
  server_->GetHealthCheckService()->SetServingStatus(service, serving);
}

void GrpcHealthTarget::Stop() {
  if (server_ == nullptr) return;
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server_->Wait();
  server_.reset();
}

}  // namespace muster::testing
