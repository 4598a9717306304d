// Closed-loop HTTP/1.1 load over keep-alive connections, for driving musterd:
// `connections` sockets on one io_context (one thread, so that the load
// generator takes at most one core), each sending its next request as soon as
// the answer to the previous one is in (no pipelining). Requests are built as
// raw text and answers parsed with Beast's parser.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include <boost/asio/ip/tcp.hpp>

#include "registry/load_result.h"

namespace muster::bench {

struct HttpRequest {
  std::string method;  // "GET", "PUT"
  std::string target;  // "/api/v1/..."
  std::string body;    // sent as application/json when not empty
};

// Text of a request with Host, Content-Length and keep-alive.
std::string FormatRequest(const HttpRequest& request);

// The next request of connection `conn`; nullopt ends that connection's loop.
using NextRequest = std::function<std::optional<HttpRequest>(int conn)>;

// Runs until every connection's NextRequest gave nullopt or `seconds` passed
// (0: no time limit).
LoadResult RunHttpLoad(const boost::asio::ip::tcp::endpoint& server, int connections,
                       double seconds, const NextRequest& next);

// One blocking request on a new connection: the status (0 when it failed)
// and the body in *body when given.
unsigned HttpOnce(const boost::asio::ip::tcp::endpoint& server, const HttpRequest& request,
                  std::string* body = nullptr);

}  // namespace muster::bench
