// Connection handling: idle and slow clients are timed out without holding a
// thread, keep-alive reuses one connection, and many idle watchers do not
// stop others from being served.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "integration/musterd_fixture.h"

namespace muster::testing {
namespace {

using std::chrono::milliseconds;

// A raw loopback TCP connection, for clients that misbehave on purpose.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = fd_ >= 0 && connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~RawConnection() {
    if (fd_ >= 0) close(fd_);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return connected_; }
  const std::string& received() const { return received_; }
  bool Send(const std::string& bytes) {
    return send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }
  // True when the server closes the connection within `timeout`; what it sends
  // first is kept in received().
  bool ClosedWithin(milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[4096];
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      int left = static_cast<int>(std::chrono::duration_cast<milliseconds>(
                                      deadline - std::chrono::steady_clock::now())
                                      .count());
      if (poll(&p, 1, std::max(left, 1)) <= 0) continue;
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return true;
      received_.append(buf, static_cast<size_t>(n));
    }
    return false;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string received_;
};

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

class ConnectionTest : public MusterdTest {
 protected:
  std::vector<std::string> MusterdArgs() const override {
    return {"--idle-timeout", "500ms", "--threads", "1"};
  }
};

// A client that connects and sends nothing is disconnected after --idle-timeout.
TEST_F(ConnectionTest, IdleClientIsDisconnected) {
  RawConnection idle(musterd_.port());
  ASSERT_TRUE(idle.connected());
  EXPECT_TRUE(idle.ClosedWithin(milliseconds(3000)));
}

// A client that sends half a request and stalls is disconnected too.
TEST_F(ConnectionTest, SlowClientIsDisconnected) {
  RawConnection slow(musterd_.port());
  ASSERT_TRUE(slow.connected());
  ASSERT_TRUE(slow.Send("PUT /api/v1/services/a/instances/b HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"add"));
  EXPECT_TRUE(slow.ClosedWithin(milliseconds(3000)));
  EXPECT_TRUE(List("a").instances.empty());
}

// Stalled clients hold no thread: with one I/O thread and many stalled
// connections, a well-behaved client is still answered.
TEST_F(ConnectionTest, StalledClientsDoNotBlockOthers) {
  std::vector<std::unique_ptr<RawConnection>> stalled;
  for (int i = 0; i < 50; ++i) {
    stalled.push_back(std::make_unique<RawConnection>(musterd_.port()));
    ASSERT_TRUE(stalled.back()->connected());
    ASSERT_TRUE(stalled.back()->Send("GET /healthz HTTP/1.1\r\nHo"));
  }
  client::HttpResponse r = Must(client().Put(InstancePath("orders", "o1", ""),
                                             R"({"address":"127.0.0.1:9000"})", milliseconds(2000)));
  EXPECT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(List("orders").instances.size(), 1u);
}

// A keep-alive client is served many requests over one connection, and the
// server closes it only when the client asks.
TEST_F(ConnectionTest, KeepAliveServesManyRequests) {
  RawConnection conn(musterd_.port());
  ASSERT_TRUE(conn.connected());
  std::string two = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  ASSERT_TRUE(conn.Send(two));
  EXPECT_TRUE(conn.ClosedWithin(milliseconds(2000)));
  EXPECT_EQ(Count(conn.received(), "HTTP/1.1 200 OK"), 2u) << conn.received();
}

}  // namespace
}  // namespace muster::testing
