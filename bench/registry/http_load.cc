// Closed-loop HTTP/1.1 load generator (see http_load.h).
#include "registry/http_load.h"

#include <memory>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

namespace muster::bench {
namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::ip::tcp;

std::string FormatRequest(const HttpRequest& request) {
  std::string text = request.method + " " + request.target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (!request.body.empty() || request.method == "PUT" || request.method == "POST") {
    text += "Content-Type: application/json\r\nContent-Length: " + std::to_string(request.body.size()) + "\r\n";
  }
  text += "\r\n";
  text += request.body;
  return text;
}

namespace {

struct Shared {
  LoadResult result;
  Clock::time_point start;
  Clock::time_point deadline;
  bool timed = false;
  Clock::time_point last_answer;
};

asio::awaitable<void> Connection(tcp::endpoint server, int conn, const NextRequest& next,
                                 Shared& shared) {
  auto executor = co_await asio::this_coro::executor;
  tcp::socket socket(executor);
  try {
    co_await socket.async_connect(server, asio::use_awaitable);
    socket.set_option(tcp::no_delay(true));
  } catch (const std::exception& e) {
    ++shared.result.failed;
    if (shared.result.first_error.empty()) shared.result.first_error = e.what();
    co_return;
  }
  // Room for a whole answer: Beast reads no more than the buffer's free
  // space (512 bytes when it is empty), so a small buffer would take a
  // 22 KB list in forty reads.
  boost::beast::flat_buffer buffer;
  buffer.reserve(64 * 1024);
  std::string text;
  while (!shared.timed || Clock::now() < shared.deadline) {
    std::optional<HttpRequest> request = next(conn);
    if (!request) break;
    text = FormatRequest(*request);
    const Clock::time_point sent = Clock::now();
    try {
      co_await asio::async_write(socket, asio::buffer(text), asio::use_awaitable);
      http::response_parser<http::string_body> parser;
      parser.body_limit(64 * 1024 * 1024);
      co_await http::async_read(socket, buffer, parser, asio::use_awaitable);
      const Clock::time_point done = Clock::now();
      shared.last_answer = done;
      const unsigned status = parser.get().result_int();
      if (status >= 200 && status < 300) {
        ++shared.result.ok;
        shared.result.latency.Add(done - sent);
      } else {
        ++shared.result.failed;
        if (shared.result.first_error.empty()) {
          shared.result.first_error = request->method + " " + request->target + ": HTTP " +
                                      std::to_string(status) + " " + parser.get().body();
        }
      }
      if (!parser.get().keep_alive()) break;
    } catch (const std::exception& e) {
      ++shared.result.failed;
      if (shared.result.first_error.empty()) shared.result.first_error = e.what();
      break;
    }
  }
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);
}

}  // namespace

LoadResult RunHttpLoad(const tcp::endpoint& server, int connections, double seconds,
                       const NextRequest& next) {
  asio::io_context io(1);
  Shared shared;
  shared.start = Clock::now();
  shared.last_answer = shared.start;
  shared.timed = seconds > 0;
  shared.deadline = shared.start + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(seconds));
  for (int c = 0; c < connections; ++c) {
    asio::co_spawn(io, Connection(server, c, next, shared), asio::detached);
  }
  io.run();
  shared.result.seconds = std::chrono::duration<double>(shared.last_answer - shared.start).count();
  return std::move(shared.result);
}

unsigned HttpOnce(const tcp::endpoint& server, const HttpRequest& request, std::string* body) {
  try {
    asio::io_context io(1);
    tcp::socket socket(io);
    socket.connect(server);
    const std::string text = FormatRequest(request);
    asio::write(socket, asio::buffer(text));
    boost::beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    http::read(socket, buffer, parser);
    if (body != nullptr) *body = parser.get().body();
    return parser.get().result_int();
  } catch (const std::exception&) {
    return 0;
  }
}

}  // namespace muster::bench
