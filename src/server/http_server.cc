#include "server/http_server.h"

#include <array>
#include <csignal>
#include <string_view>

#include <spdlog/spdlog.h>

#include "absl/status/status.h"
#include "core/strings.h"
#include "core/validation.h"
#include "server/http_request.h"

namespace muster {
namespace {

// Sets Content-Length and sends `response` as its head's text and its
// payload: one write of a few buffers, where Beast's serializer would walk
// its own buffer sequences for every answer. An answer to HEAD is sent
// without its payload (but with the length it would have).
awaitable<bool> Send(beast::tcp_stream& stream, Response& response,
                     std::chrono::milliseconds timeout, bool with_payload) {
  response.prepare_payload();
  if (response.shared != nullptr || !response.tail.empty()) {
    response.content_length(response.payload_size());
  }
  const std::string head = ResponseHead(response);
  const std::string_view shared = response.shared != nullptr ? *response.shared : std::string_view();
  std::array<asio::const_buffer, 4> buffers{asio::buffer(head), asio::buffer(response.body()),
                                            asio::buffer(shared), asio::buffer(response.tail)};
  if (!with_payload) buffers = {asio::buffer(head)};
  stream.expires_after(timeout);
  auto [ec, written] = co_await asio::async_write(stream, buffers, use_tuple);
  co_return !ec;
}

}  // namespace

HttpServer::HttpServer(const ServerConfig& config, Catalog& catalog)
    : config_(config),
      api_(config, catalog),
      connections_(ConnectionLimits{config.max_connections, config.max_connections_per_client}),
      control_(asio::make_strand(ioc_)),
      acceptor_(control_),
      signals_(control_, SIGINT, SIGTERM) {
  api_.SetConnections(&connections_);
}

HttpServer::~HttpServer() = default;

absl::StatusOr<std::string> HttpServer::Listen() {
  auto host_port = SplitHostPort(config_.listen, AddressUse::kListen);
  if (!host_port.ok()) return host_port.status();
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host_port->first, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        StrCat("--listen needs an IP address, not \"", host_port->first, "\""));
  }
  asio::ip::tcp::endpoint endpoint(address, host_port->second);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return absl::UnavailableError(StrCat("cannot listen on ", config_.listen, ": ", ec.message()));
  hosts_ = HostPolicy(host_port->first, config_.allowed_hosts);
  if (!address.is_loopback()) {
    spdlog::warn("listening on {}, which is not a loopback address, and musterd has no authentication: "
                 "anyone who can reach it can change the registry",
                 config_.listen);
  }
  auto bound = acceptor_.local_endpoint();
  std::string host = bound.address().is_v6() ? StrCat("[", bound.address().to_string(), "]")
                                             : bound.address().to_string();
  std::string listening = StrCat(host, ":", bound.port());
  api_.SetListenAddress(listening);
  return listening;
}

void HttpServer::Run(unsigned threads) {
  signals_.async_wait([this](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    spdlog::info("signal {}: shutting down", signal);
    Shutdown();
  });
  for (unsigned i = 1; i < threads; ++i) {
    workers_.push_back(std::make_unique<asio::io_context>(1));
    worker_guards_.push_back(asio::make_work_guard(*workers_.back()));
  }
  asio::co_spawn(control_, Accept(), asio::detached);
  std::vector<std::thread> pool;
  for (auto& worker : workers_) pool.emplace_back([ctx = worker.get()] { ctx->run(); });
  ioc_.run();
  for (auto& t : pool) t.join();
}

asio::io_context::executor_type HttpServer::NextExecutor() {
  const size_t i = next_context_++ % (workers_.size() + 1);
  return i == 0 ? ioc_.get_executor() : workers_[i - 1]->get_executor();
}

void HttpServer::Shutdown() {
  asio::post(control_, [this] {
    if (shutting_down_.exchange(true)) return;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    signals_.cancel(ignored);
    api_.BeginShutdown();
    asio::co_spawn(ioc_, AwaitDrain(), asio::detached);
  });
}

awaitable<void> HttpServer::AwaitDrain() {
  asio::steady_timer timer(ioc_);
  auto deadline = std::chrono::steady_clock::now() + config_.shutdown_grace;
  while (in_flight_.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    timer.expires_after(std::chrono::milliseconds(20));
    co_await timer.async_wait(use_tuple);
  }
  if (in_flight_.load() > 0) {
    spdlog::warn("{} requests still in flight after the shutdown grace; closing them", in_flight_.load());
  }
  worker_guards_.clear();
  for (auto& worker : workers_) worker->stop();
  ioc_.stop();
}

awaitable<void> HttpServer::Accept() {
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(NextExecutor(), use_tuple);
    if (ec) {
      if (!acceptor_.is_open()) co_return;
      if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space) {
        // Out of descriptors below --max-connections (other files took
        // them): make room by the same rule as the bound does. The next
        // accept goes at once: the connections queued behind the one that
        // failed wait for it, and a shed connection closes soon after on its
        // own thread (until then, another accept may shed another).
        if (connections_.ShedIdlest()) continue;
        spdlog::warn("accept: {}; pausing", ec.message());
        asio::steady_timer pause(ioc_, std::chrono::milliseconds(100));
        co_await pause.async_wait(use_tuple);
      }
      continue;
    }
    socket.set_option(asio::ip::tcp::no_delay(true), ec);
    auto executor = socket.get_executor();
    asio::co_spawn(executor, Session(std::move(socket)), asio::detached);
  }
}

awaitable<void> HttpServer::Session(asio::ip::tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  boost::system::error_code peer_ec;
  const auto peer = stream.socket().remote_endpoint(peer_ec);
  std::optional<ConnectionTable::Registration> connection = connections_.Admit(
      peer_ec ? std::string() : peer.address().to_string(), stream.get_executor(), [&stream] {
        boost::system::error_code ignored;
        stream.socket().close(ignored);
      });
  if (!connection) {
    // Every connection within the bound has a request in progress or a
    // watch: this one is turned away.
    Response busy = ErrorResponse(absl::UnavailableError(
        "musterd has too many connections open (--max-connections); try again"));
    busy.set(http::field::retry_after, "1");
    busy.set(http::field::server, "musterd");
    busy.keep_alive(false);
    co_await Send(stream, busy, std::chrono::seconds(1), /*with_payload=*/true);
    co_return;
  }
  beast::flat_buffer buffer;
  for (;;) {
    (*connection)->Waiting();
    RequestParser parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(config_.limits.max_body_bytes);
    // The whole request, header and body, must arrive within the idle timeout.
    stream.expires_after(config_.idle_timeout);
    // The header is read whole before it is parsed, so that its raw bytes
    // can be checked (ReadHeader).
    size_t header_end = 0;
    std::optional<Response> error;
    for (size_t scanned = 0;;) {
      const std::string_view bytes(static_cast<const char*>(buffer.data().data()), buffer.size());
      header_end = HeaderEnd(bytes.substr(scanned));
      if (header_end != 0) {
        header_end += scanned;
        break;
      }
      if (bytes.size() > kHeaderLimit) {
        error = ReadFailure(http::error::header_limit, config_.limits.max_body_bytes);
        break;
      }
      scanned = bytes.size() < 3 ? 0 : bytes.size() - 3;
      auto [ec, n] = co_await stream.async_read_some(buffer.prepare(kHeaderLimit), use_tuple);
      if (ec) break;  // closed, reset, timed out or shed: nothing to answer
      buffer.commit(n);
      (*connection)->Active();
    }
    (*connection)->Busy();
    if (header_end == 0 && !error) break;
    if (!error) {
      const std::string_view header(static_cast<const char*>(buffer.data().data()), header_end);
      error = ReadHeader(header, parser, hosts_, config_.limits.max_body_bytes);
      buffer.consume(header_end);
    }
    if (!error) {
      // Answer "Expect: 100-continue" only once the body is known to fit
      // (ReadHeader refused a Content-Length over the limit).
      auto expect = parser.get().find(http::field::expect);
      if (expect != parser.get().end() && beast::iequals(expect->value(), "100-continue")) {
        http::response<http::empty_body> cont{http::status::continue_, 11};
        co_await http::async_write(stream, cont, use_tuple);
      }
      beast::error_code ec;
      if (!parser.is_done()) std::tie(ec, std::ignore) = co_await http::async_read(stream, buffer, parser, use_tuple);
      if (ec) {
        error = ReadFailure(ec, config_.limits.max_body_bytes);
        if (!error) break;  // closed, reset or timed out: nothing to answer
      }
    }
    if (error) {
      // What follows a request refused before its end cannot be trusted to
      // be the start of another: answer once and close.
      error->keep_alive(false);
      error->set(http::field::server, "musterd");
      co_await Send(stream, *error, config_.write_timeout, /*with_payload=*/true);
      break;
    }

    ++in_flight_;
    Request request = parser.release();
    ApiHandler::Reply reply = co_await api_.Handle(request);
    if (auto* watch = std::get_if<ApiHandler::WatchStream>(&reply)) {
      // The stream gets a coroutine of its own and this one ends, so that
      // a watch holds only what it needs for as long as it lasts, not this
      // frame, the request and the buffer.
      // It stays counted in flight (Watch uncounts it at its end).
      auto executor = stream.get_executor();
      (*connection)->Streaming();
      asio::co_spawn(executor, Watch(std::move(stream), std::move(*watch), *std::move(connection)),
                     asio::detached);
      co_return;
    }
    Response& response = std::get<Response>(reply);
    bool keep_alive = request.keep_alive() && !shutting_down_.load();
    response.version(request.version());
    response.keep_alive(keep_alive);
    response.set(http::field::server, "musterd");
    const bool with_payload = request.method() != http::verb::head;
    if (!co_await Send(stream, response, config_.write_timeout, with_payload)) keep_alive = false;
    --in_flight_;
    if (!keep_alive) break;
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
}

awaitable<void> HttpServer::Watch(beast::tcp_stream stream, ApiHandler::WatchStream watch,
                                  ConnectionTable::Registration connection) {
  // `connection` keeps the watch counted against the bounds until it ends.
  (void)connection;
  co_await api_.Stream(watch, stream);
  --in_flight_;
  boost::system::error_code ignored;
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
}

}  // namespace muster
