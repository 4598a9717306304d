// One SSE watcher of musterd (see sse_watch.h).
#include "registry/sse_watch.h"

#include <algorithm>
#include <vector>

#include <boost/asio/read_until.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "registry/http_load.h"
#include "core/wire/paths.h"

namespace muster::bench {
namespace asio = boost::asio;
using asio::ip::tcp;

asio::awaitable<void> SseWatch(tcp::endpoint server, std::string service, std::string type,
                               const SseHooks& hooks) {
  auto executor = co_await asio::this_coro::executor;
  tcp::socket socket(executor);
  // "\nevent: " ends where the type starts; with a type, the line must end
  // there too.
  const std::string pattern = "\nevent: " + (type.empty() ? "" : type + "\n");
  bool opened = false;
  try {
    co_await socket.async_connect(server, asio::use_awaitable);
    const std::string request = FormatRequest({"GET", wire::WatchTarget("", {service}), ""});
    co_await asio::async_write(socket, asio::buffer(request), asio::use_awaitable);
    std::string data;
    const size_t head = co_await asio::async_read_until(socket, asio::dynamic_buffer(data), "\r\n\r\n",
                                                        asio::use_awaitable);
    if (data.compare(0, 12, "HTTP/1.1 200") != 0) {
      hooks.failed("watch answered " + data.substr(0, data.find('\r')));
      co_return;
    }
    opened = true;
    hooks.opened();
    // What follows the head is events; the last few bytes are kept across
    // reads so that a pattern split between two reads is still found.
    std::string text = "\n" + data.substr(head);
    int events = 0;
    std::vector<char> buf(16384);
    while (true) {
      size_t from = 0;
      for (size_t at = text.find(pattern); at != std::string::npos; at = text.find(pattern, from)) {
        hooks.event(events++);
        from = at + pattern.size();
      }
      const size_t keep = std::min(text.size() - from, pattern.size() - 1);
      text.erase(0, text.size() - keep);
      const size_t n = co_await socket.async_read_some(asio::buffer(buf), asio::use_awaitable);
      text.append(buf.data(), n);
    }
  } catch (const std::exception& e) {
    if (!opened) hooks.failed(std::string("watcher: ") + e.what());
  }
}

}  // namespace muster::bench
