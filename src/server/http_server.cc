#include "server/http_server.h"

#include <array>
#include <csignal>
#include <string_view>

#include <spdlog/spdlog.h>

#include "core/strings.h"
#include "core/validation.h"

namespace muster {
namespace {

constexpr size_t kHeaderLimit = 16 * 1024;

// Sets Content-Length and sends `response` as its head's text and its
// payload: one write of a few buffers, where Beast's serializer would walk
// its own buffer sequences for every answer.
awaitable<bool> Send(beast::tcp_stream& stream, Response& response,
                     std::chrono::milliseconds timeout) {
  response.prepare_payload();
  if (response.shared != nullptr || !response.tail.empty()) {
    response.content_length(response.payload_size());
  }
  const std::string head = ResponseHead(response);
  const std::string_view shared = response.shared != nullptr ? *response.shared : std::string_view();
  const std::array<asio::const_buffer, 4> buffers{asio::buffer(head), asio::buffer(response.body()),
                                                  asio::buffer(shared), asio::buffer(response.tail)};
  stream.expires_after(timeout);
  auto [ec, written] = co_await asio::async_write(stream, buffers, use_tuple);
  co_return !ec;
}

}  // namespace

HttpServer::HttpServer(const ServerConfig& config, Catalog& catalog)
    : config_(config),
      api_(config, catalog),
      control_(asio::make_strand(ioc_)),
      acceptor_(control_),
      signals_(control_, SIGINT, SIGTERM) {}

HttpServer::~HttpServer() = default;

absl::StatusOr<std::string> HttpServer::Listen() {
  auto host_port = SplitHostPort(config_.listen);
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
  auto bound = acceptor_.local_endpoint();
  std::string host = bound.address().is_v6() ? StrCat("[", bound.address().to_string(), "]")
                                             : bound.address().to_string();
  return StrCat(host, ":", bound.port());
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
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(config_.limits.max_body_bytes);
    stream.expires_after(config_.idle_timeout);
    auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, use_tuple);
    std::optional<Response> error;
    if (!ec) {
      // Answer "Expect: 100-continue" only once the body is known to fit.
      auto expect = parser.get().find(http::field::expect);
      if (expect != parser.get().end() && beast::iequals(expect->value(), "100-continue")) {
        http::response<http::empty_body> cont{http::status::continue_, 11};
        co_await http::async_write(stream, cont, use_tuple);
      }
      std::tie(ec, n) = co_await http::async_read(stream, buffer, parser, use_tuple);
    }
    if (ec == http::error::body_limit) {
      error = ErrorResponse(http::status::payload_too_large, "payload_too_large",
                            StrCat("the body is over ", config_.limits.max_body_bytes, " bytes"));
    } else if (ec == http::error::header_limit) {
      error = ErrorResponse(http::status::request_header_fields_too_large, "bad_request",
                            "the request header is over 16 KiB");
    } else if (ec && ec.category() == http::make_error_code(http::error::bad_method).category() &&
               ec != http::error::end_of_stream && ec != http::error::partial_message) {
      error = ErrorResponse(http::status::bad_request, "bad_request",
                            StrCat("malformed HTTP request: ", ec.message()));
    } else if (ec) {
      break;  // closed, reset or timed out: nothing to answer
    }
    if (error) {
      error->keep_alive(false);
      co_await Send(stream, *error, config_.write_timeout);
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
      asio::co_spawn(executor, Watch(std::move(stream), std::move(*watch)), asio::detached);
      co_return;
    }
    Response& response = std::get<Response>(reply);
    bool keep_alive = request.keep_alive() && !shutting_down_.load();
    response.version(request.version());
    response.keep_alive(keep_alive);
    response.set(http::field::server, "musterd");
    if (!co_await Send(stream, response, config_.write_timeout)) keep_alive = false;
    --in_flight_;
    if (!keep_alive) break;
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
}

awaitable<void> HttpServer::Watch(beast::tcp_stream stream, ApiHandler::WatchStream watch) {
  co_await api_.Stream(watch, stream);
  --in_flight_;
  boost::system::error_code ignored;
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
}

}  // namespace muster
