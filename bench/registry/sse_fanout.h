// Watch fan-out on musterd: `watchers` Server-Sent Event streams on
// /api/v1/watch?service=fan (one TCP connection each, all on one io_context
// thread), then `changes` registrations in service "fan", one after another:
// each waits until every stream has received its event (or 10 s passed).
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include "registry/fanout.h"

namespace muster::bench {

FanoutResult RunSseFanout(const boost::asio::ip::tcp::endpoint& server, int watchers, int changes);

}  // namespace muster::bench
