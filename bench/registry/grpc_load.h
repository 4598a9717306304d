// Asynchronous gRPC plumbing for driving etcd: completion-queue tags, one
// async unary call, and a closed-loop load of `inflight` operations at a time
// (each operation may chain several calls), all driven by the calling thread
// alone, so that the load generator takes at most one core.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "registry/load_result.h"

namespace muster::bench {

// What a completion queue hands back: Proceed(ok) runs on the queue's thread.
class Tag {
 public:
  virtual ~Tag() = default;
  virtual void Proceed(bool ok) = 0;
};

// A reusable tag that calls a function (for streams: one per operation kind).
class FnTag final : public Tag {
 public:
  std::function<void(bool)> fn;
  void Proceed(bool ok) override { fn(ok); }
};

template <typename Response>
class UnaryCall final : public Tag {
 public:
  grpc::ClientContext context;
  Response response;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> reader;
  std::function<void(const grpc::Status&, Response&)> done;
  void Proceed(bool) override {
    done(status, response);
    delete this;
  }
};

// Starts a unary call: `start(context, cq)` is e.g.
// [&](auto* ctx, auto* cq) { return stub->AsyncRange(ctx, request, cq); }.
// `done(status, response)` runs on the queue's thread.
template <typename Response, typename Start>
void CallAsync(grpc::CompletionQueue* cq, Start start,
               std::function<void(const grpc::Status&, Response&)> done) {
  auto* call = new UnaryCall<Response>;
  call->done = std::move(done);
  call->reader = start(&call->context, cq);
  call->reader->Finish(&call->response, &call->status, call);
}

// `count` channels to `address` ("127.0.0.1:PORT"), each its own TCP
// connection (a local subchannel pool per channel), plaintext.
std::vector<std::shared_ptr<grpc::Channel>> MakeChannels(const std::string& address, int count);

// Called by an operation when it is over: ok, or the error.
using OpDone = std::function<void(bool ok, const std::string& error)>;
// Starts operation number `seq` in slot `slot` on `cq`; false: no more
// operations for this slot.
using StartOp = std::function<bool(grpc::CompletionQueue* cq, int slot, OpDone done)>;

// Runs `inflight` slots, each starting its next operation when the previous
// one is done, until every slot's StartOp said false or `seconds` passed (0:
// no limit). Latency is from the start of an operation to its OpDone.
LoadResult RunGrpcLoad(int inflight, double seconds, const StartOp& start);

// Runs `cq` on this thread until `finished()` holds after a tag, then shuts
// it down and drains it.
void RunQueue(grpc::CompletionQueue& cq, const std::function<bool()>& finished);

}  // namespace muster::bench
