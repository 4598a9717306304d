// The xds_fanout scenario on musterd: what a thousand xDS clients cost it and
// how fast a registration reaches all of them.
//
//   1. musterd's xDS address from /healthz (xds.address); its VmRSS;
//   2. p.xds_streams ADS streams (xds_streams.h), p.xds_streams_per_channel
//      to an HTTP/2 connection, each following EDS of service "xfan" (no
//      instances yet) and ACKing every response; once every stream has its
//      first response: VmRSS again, and /healthz must count exactly that many
//      xDS streams;
//   3. p.xds_changes registrations in "xfan" (instances "x-0", "x-1", ...,
//      TTL 1 h), one at a time over one keep-alive connection: each once
//      every stream has received the assignment holding the previous one (or
//      10 s passed);
//   4. /healthz once every ACK is counted: no NACK, and every stream still
//      open.
//
// Latencies are from just before the registration's PUT was sent (as in
// watch_fanout) to the moment the stream's response holding the new
// instance was read by the load generator; the PUT's own round trip is
// reported beside them (write_p50_ms).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include <boost/asio/ip/tcp.hpp>

#include "registry/latency.h"
#include "registry/scenario.h"

namespace muster::bench {

// musterd's "xds" object of /healthz.
struct XdsHealth {
  bool read = false;  // /healthz answered and had an "xds" object
  std::string address;
  uint64_t streams = 0;
  uint64_t streams_total = 0;
  uint64_t refused = 0;
  uint64_t responses = 0;
  uint64_t acks = 0;
  uint64_t nacks = 0;
};

XdsHealth ReadXdsHealth(const boost::asio::ip::tcp::endpoint& server);

struct XdsFanoutResult {
  int streams = 0;   // asked for
  int channels = 0;  // HTTP/2 connections they were spread over
  int ready = 0;     // had their first response before the first change
  int changes = 0;   // changes every stream received
  double open_ms = 0;  // from opening the first stream until every one had its first response
  LatencyLog last;        // per change: until the last stream had it
  LatencyLog first;       // per change: until the first stream had it
  LatencyLog per_stream;  // per change and stream
  LatencyLog write;       // per change: the PUT's own round trip
  uint64_t rss_base = 0;     // bytes, before the streams
  uint64_t rss_streams = 0;  // with every stream open and answered
  uint64_t rss_after = 0;    // after the changes
  int threads_base = 0;      // musterd's threads before the streams
  int threads_streams = 0;   // and with them open
  // CPU time over the changes (from just before the first PUT until the
  // last stream had the last change, the 50 ms pauses between changes
  // included), of musterd and of the load generator (this process).
  double server_cpu_s = 0;
  double client_cpu_s = 0;
  XdsHealth opened;  // /healthz with every stream open
  XdsHealth after;   // /healthz after the changes
  uint64_t push_bytes = 0;   // the largest EDS response a stream read
  std::string error;         // why it stopped early, if it did
};

// Runs the scenario against the musterd at `server` (process `pid`).
XdsFanoutResult RunXdsFanout(const boost::asio::ip::tcp::endpoint& server, pid_t pid, const Params& p);

// value: p50 over the changes of the time until the last stream had the
// change, in ms; extra p99_ms and max_ms of the same, stream_p50_ms,
// stream_p99_ms, stream_max_ms over every (change, stream), first_p50_ms,
// write_p50_ms, streams, channels, bytes_per_stream ((rss_streams -
// rss_base) / streams), rss_base_mb, rss_streams_mb, rss_after_mb,
// push_bytes (the largest EDS response),
// threads_base, threads_streams, open_ms, server_us_per_push and
// client_us_per_push (CPU over the changes / (changes * streams)), and
// musterd's own counts (healthz_streams, responses, acks, nacks). Not measured unless
// every stream opened, every change reached every stream, /healthz counted
// every stream and no NACK.
Figures XdsFanoutFigures(XdsFanoutResult& r, int changes_wanted);

}  // namespace muster::bench
