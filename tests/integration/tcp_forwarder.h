// A loopback TCP forwarder for integration tests: listens on a port that stays
// the same for the test's whole life and relays every connection to a target
// port that the test may change. A restarted musterd comes up on a new port
// (MusterdProcess binds port 0); pointing the forwarder at it lets an SDK
// client configured with one fixed address reach "the same registry" again.
//
// Example:
//   TcpForwarder forwarder;
//   forwarder.SetTarget(musterd.port());
//   auto registry = NewMusterRegistry({.addresses = {forwarder.address()}});
//   musterd.Kill9();                     // relayed connections break
//   musterd.Restart();
//   forwarder.SetTarget(musterd.port());  // new connections reach it
//
// A connection accepted while the target refuses is closed at once, as a
// connection to a dead server would be refused. One I/O thread; SetTarget is
// thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio.hpp>

namespace muster::testing {

class TcpForwarder {
 public:
  TcpForwarder()
      : acceptor_(ioc_, Endpoint(0)), port_(acceptor_.local_endpoint().port()) {
    Accept();
    thread_ = std::thread([this] { ioc_.run(); });
  }

  ~TcpForwarder() {
    ioc_.stop();
    thread_.join();
  }

  TcpForwarder(const TcpForwarder&) = delete;
  TcpForwarder& operator=(const TcpForwarder&) = delete;

  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // Where connections accepted from now on go (127.0.0.1:port).
  void SetTarget(uint16_t port) { target_.store(port); }

 private:
  using tcp = boost::asio::ip::tcp;
  using error_code = boost::system::error_code;

  static tcp::endpoint Endpoint(uint16_t port) {
    return tcp::endpoint(boost::asio::ip::make_address_v4("127.0.0.1"), port);
  }

  // One relayed connection: bytes are copied both ways; when either side
  // ends, both are closed.
  struct Pipe : std::enable_shared_from_this<Pipe> {
    explicit Pipe(tcp::socket c) : client(std::move(c)), server(client.get_executor()) {}

    void Start(uint16_t target) {
      server.async_connect(Endpoint(target), [self = shared_from_this()](const error_code& ec) {
        if (ec) return self->Close();
        self->Relay(self->client, self->server, self->up);
        self->Relay(self->server, self->client, self->down);
      });
    }

    void Relay(tcp::socket& from, tcp::socket& to, std::array<char, 16384>& buffer) {
      from.async_read_some(boost::asio::buffer(buffer), [self = shared_from_this(), &from, &to,
                                                         &buffer](const error_code& ec, size_t n) {
        if (ec) return self->Close();
        boost::asio::async_write(to, boost::asio::buffer(buffer.data(), n),
                                 [self, &from, &to, &buffer](const error_code& wec, size_t) {
                                   if (wec) return self->Close();
                                   self->Relay(from, to, buffer);
                                 });
      });
    }

    void Close() {
      error_code ignored;
      client.close(ignored);
      server.close(ignored);
    }

    tcp::socket client;
    tcp::socket server;
    std::array<char, 16384> up;
    std::array<char, 16384> down;
  };

  void Accept() {
    acceptor_.async_accept([this](const error_code& ec, tcp::socket socket) {
      if (ec) return;
      std::make_shared<Pipe>(std::move(socket))->Start(target_.load());
      Accept();
    });
  }

  boost::asio::io_context ioc_;
  tcp::acceptor acceptor_;
  const uint16_t port_;
  std::atomic<uint16_t> target_{0};
  std::thread thread_;
};

}  // namespace muster::testing
