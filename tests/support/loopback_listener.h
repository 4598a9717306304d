// The accepting half of an in-process test server: an io_context on a thread
// of its own and an acceptor on a loopback address (a free port), which
// hands each connection to the test's session coroutine. The tests' HTTP(S)
// servers (probe targets, webhook receivers, the outbound client's peer)
// differ only in what a session does.
//
//   LoopbackListener listener("127.0.0.1");
//   listener.Start([&](tcp::socket s) { return Serve(std::move(s)); });
//   ... listener.port() ...
//   listener.Stop();  // before whatever the sessions use goes away
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/as_tuple.hpp>

namespace muster::testing {

class LoopbackListener {
 public:
  using Session = std::function<boost::asio::awaitable<void>(boost::asio::ip::tcp::socket)>;

  // Listens on `address`, a free port; port() is 0 when that failed.
  explicit LoopbackListener(const std::string& address = "127.0.0.1") : acceptor_(ioc_) {
    namespace asio = boost::asio;
    boost::system::error_code ec;
    asio::ip::tcp::endpoint endpoint(asio::ip::make_address(address, ec), 0);
    if (!ec) acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (!ec) port_ = acceptor_.local_endpoint().port();
  }
  ~LoopbackListener() { Stop(); }
  LoopbackListener(const LoopbackListener&) = delete;
  LoopbackListener& operator=(const LoopbackListener&) = delete;

  // Accepts connections on the listener's thread, each to a `session` of
  // its own. Once; nothing happens when listening failed.
  void Start(Session session) {
    if (port_ == 0) return;
    boost::asio::co_spawn(ioc_, Accept(std::move(session)), boost::asio::detached);
    thread_ = std::thread([this] { ioc_.run(); });
  }

  // Ends the thread; the sessions are abandoned. Idempotent.
  void Stop() {
    ioc_.stop();
    if (thread_.joinable()) thread_.join();
  }

  uint16_t port() const { return port_; }
  // For the sessions' own timers and coroutines.
  boost::asio::io_context& context() { return ioc_; }

 private:
  boost::asio::awaitable<void> Accept(Session session) {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(
          boost::asio::as_tuple(boost::asio::use_awaitable));
      if (ec) co_return;
      boost::asio::co_spawn(ioc_, session(std::move(socket)), boost::asio::detached);
    }
  }

  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread thread_;
};

}  // namespace muster::testing
