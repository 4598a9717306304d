// Lease keep-alive load on etcd (see keepalive_load.h).
#include "registry/keepalive_load.h"

#include <deque>

#include "registry/grpc_load.h"
#include "rpc.grpc.pb.h"

namespace muster::bench {
namespace {

using etcdserverpb::LeaseKeepAliveRequest;
using etcdserverpb::LeaseKeepAliveResponse;

struct Run {
  const std::vector<int64_t>* leases = nullptr;
  size_t next = 0;
  Clock::time_point deadline;
  int finished = 0;
  LoadResult result;
  Clock::time_point last;
};

struct Stream {
  Run* run = nullptr;
  std::unique_ptr<etcdserverpb::Lease::Stub> stub;
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientAsyncReaderWriter<LeaseKeepAliveRequest, LeaseKeepAliveResponse>> rw;
  LeaseKeepAliveRequest request;
  LeaseKeepAliveResponse response;
  grpc::Status status;
  FnTag started, read, wrote, done;
  std::deque<Clock::time_point> sent;  // written, not answered yet
  int to_write = 0;
  bool writing = false;
  bool cancelled = false;

  void Fail(const std::string& what) {
    ++run->result.failed;
    if (run->result.first_error.empty()) run->result.first_error = what;
  }
  bool Stopping() const { return Clock::now() >= run->deadline; }
  void MaybeWrite() {
    if (writing || to_write == 0 || cancelled) return;
    if (Stopping()) {
      if (sent.empty()) Cancel();
      return;
    }
    request.set_id((*run->leases)[run->next++ % run->leases->size()]);
    sent.push_back(Clock::now());
    --to_write;
    writing = true;
    rw->Write(request, &wrote);
  }
  void Cancel() {
    if (cancelled) return;
    cancelled = true;
    context.TryCancel();
  }
};

}  // namespace

LoadResult RunKeepAliveLoad(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                            const std::vector<int64_t>& leases, int streams, int window,
                            double seconds) {
  grpc::CompletionQueue cq;
  Run run;
  run.leases = &leases;
  const Clock::time_point begin = Clock::now();
  run.deadline = begin + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  run.last = begin;
  std::vector<std::unique_ptr<Stream>> all;
  for (int i = 0; i < streams; ++i) {
    auto s = std::make_unique<Stream>();
    Stream* self = s.get();
    s->run = &run;
    s->stub = etcdserverpb::Lease::NewStub(channels[static_cast<size_t>(i) % channels.size()]);
    s->done.fn = [&run](bool) { ++run.finished; };
    s->started.fn = [self, window](bool ok) {
      if (!ok) {
        self->Fail("LeaseKeepAlive: the stream did not start");
        self->rw->Finish(&self->status, &self->done);
        return;
      }
      self->rw->Read(&self->response, &self->read);
      self->to_write = window;
      self->MaybeWrite();
    };
    s->wrote.fn = [self](bool ok) {
      self->writing = false;
      if (!ok) return;  // the stream broke; the read sees it too
      self->MaybeWrite();
    };
    s->read.fn = [self](bool ok) {
      if (!ok) {
        if (!self->cancelled) self->Fail("LeaseKeepAlive: the stream ended");
        self->rw->Finish(&self->status, &self->done);
        return;
      }
      const Clock::time_point now = Clock::now();
      if (!self->sent.empty()) {
        if (self->response.ttl() > 0) {
          ++self->run->result.ok;
          self->run->result.latency.Add(now - self->sent.front());
          self->run->last = now;
        } else {
          self->Fail("LeaseKeepAlive: lease " + std::to_string(self->response.id()) + " not found");
        }
        self->sent.pop_front();
      }
      ++self->to_write;
      self->rw->Read(&self->response, &self->read);
      self->MaybeWrite();
    };
    s->rw = s->stub->AsyncLeaseKeepAlive(&s->context, &cq, &s->started);
    all.push_back(std::move(s));
  }
  RunQueue(cq, [&] { return run.finished == streams; });
  run.result.seconds = std::chrono::duration<double>(run.last - begin).count();
  return std::move(run.result);
}

}  // namespace muster::bench
