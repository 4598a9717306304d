// Many xDS clients for the xds_fanout scenario: `count` ADS streams (Envoy's
// AggregatedDiscoveryService v3, state of the world), each following one EDS
// resource, spread over the given channels (HTTP/2 connections) and driven by
// one completion queue on the thread that calls Run(), so that a thousand
// streams cost the load generator one thread, not a thousand.
//
// Each stream sends its subscription (a node id, the EDS type URL and the one
// resource name), then reads responses for as long as it is open and ACKs
// each one (its version_info and nonce). One write is in flight per stream at
// a time; a response that arrives while an ACK is still being written is
// ACKed once that write is done, and only the newest one then (an ACK of an
// older nonce is ignored by the server anyway).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include <google/protobuf/arena.h>

namespace muster::bench {

class XdsStreams {
 public:
  // Called on the Run() thread.
  struct Hooks {
    std::function<void()> ready;   // a stream has its first EDS response
    std::function<void()> failed;  // a stream ended before its first response
    // Stream `stream` (0..count-1) received, for the first time, an
    // assignment holding the endpoint of instance "<id_prefix><nth>" (its
    // locality's sub_zone is the instance id).
    std::function<void(int stream, int nth)> arrived;
  };
  XdsStreams(const std::vector<std::shared_ptr<grpc::Channel>>& channels, std::string resource,
             std::string id_prefix, int count, Hooks hooks);
  ~XdsStreams();
  XdsStreams(const XdsStreams&) = delete;
  XdsStreams& operator=(const XdsStreams&) = delete;

  // Opens the streams and serves them until Cancel() and every stream ended.
  void Run();
  // Ends every stream; from any thread, after Run() started.
  void Cancel();

  // Read after Run() returned: what the streams received and sent.
  struct Counts {
    uint64_t responses = 0;  // EDS responses read
    uint64_t acks = 0;       // ACKs written
    uint64_t unexpected = 0;  // responses of another type, or not unpackable
    uint64_t largest = 0;     // bytes of the largest EDS response (serialized)
  };
  Counts counts() const { return counts_; }

 private:
  struct Stream;
  void Start(Stream& s);
  void OnRead(Stream& s, bool ok);
  void OnWrote(Stream& s, bool ok);
  void Write(Stream& s);

  const std::string resource_;
  const std::string id_prefix_;
  const Hooks hooks_;
  grpc::CompletionQueue cq_;
  // Where responses are unpacked (Run() thread only): an arena over a block
  // of ours, reset after each response, so that reading a push allocates
  // nothing and frees nothing message by message.
  std::vector<char> arena_block_;
  std::unique_ptr<google::protobuf::Arena> arena_;
  std::vector<std::unique_ptr<Stream>> streams_;
  // Run() thread only.
  int finished_ = 0;
  Counts counts_;
};

}  // namespace muster::bench
