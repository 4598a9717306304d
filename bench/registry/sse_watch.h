// One watcher of musterd's change stream: GET /api/v1/watch?service=S on a
// connection of its own, read as raw bytes and scanned for event lines
// ("\nevent: TYPE"), without parsing the JSON. For the fan-out and expiry
// scenarios, which run thousands of these on one io_context thread.
#pragma once

#include <functional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace muster::bench {

struct SseHooks {
  // The 200 head is in: the watch is registered.
  std::function<void()> opened;
  // The stream could not be opened.
  std::function<void(const std::string& error)> failed;
  // Event number `nth` (from 0, counting only events of the type asked for)
  // of this stream has arrived.
  std::function<void(int nth)> event;
};

// Runs until the connection ends (or the io_context stops). `type` empty:
// every event counts; else only events of that type ("expired").
boost::asio::awaitable<void> SseWatch(boost::asio::ip::tcp::endpoint server, std::string service,
                                      std::string type, const SseHooks& hooks);

}  // namespace muster::bench
