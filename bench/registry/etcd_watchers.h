// Many etcd watchers: `count` Watch streams, each with one watch on a key
// prefix, spread over the given channels (HTTP/2 connections) and driven by
// one completion queue on the thread that calls Run(). For the fan-out and
// expiry scenarios.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

namespace muster::bench {

class EtcdWatchers {
 public:
  // Called on the Run() thread.
  struct Hooks {
    std::function<void()> created;  // a stream's watch is in place
    std::function<void()> failed;   // a stream ended before its watch was
    // Event number `nth` (from 0, counting only events of the kind asked
    // for) of one stream has arrived.
    std::function<void(int nth)> event;
  };
  // deletes_only: count DELETE events only (removals), else every event.
  EtcdWatchers(const std::vector<std::shared_ptr<grpc::Channel>>& channels, const std::string& prefix,
               int count, bool deletes_only, Hooks hooks);
  ~EtcdWatchers();
  EtcdWatchers(const EtcdWatchers&) = delete;
  EtcdWatchers& operator=(const EtcdWatchers&) = delete;

  // Opens the streams and serves them until Cancel() and every stream ended.
  void Run();
  // Ends every stream; from any thread, after Run() started.
  void Cancel();

 private:
  struct Stream;
  grpc::CompletionQueue cq_;
  std::vector<std::unique_ptr<Stream>> streams_;
  int finished_ = 0;  // Run() thread only
};

}  // namespace muster::bench
