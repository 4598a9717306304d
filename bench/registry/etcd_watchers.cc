// Many etcd Watch streams on one completion queue (see etcd_watchers.h).
#include "registry/etcd_watchers.h"

#include "etcd/client.h"
#include "registry/grpc_load.h"
#include "rpc.grpc.pb.h"

namespace muster::bench {

struct EtcdWatchers::Stream {
  std::unique_ptr<etcdserverpb::Watch::Stub> stub;
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientAsyncReaderWriter<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>> rw;
  etcdserverpb::WatchRequest request;
  etcdserverpb::WatchResponse response;
  grpc::Status status;
  FnTag started, wrote, read, done;
  int events = 0;
  bool created = false;
};

EtcdWatchers::EtcdWatchers(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                           const std::string& prefix, int count, bool deletes_only, Hooks hooks) {
  auto shared = std::make_shared<Hooks>(std::move(hooks));
  for (int i = 0; i < count; ++i) {
    auto s = std::make_unique<Stream>();
    Stream* self = s.get();
    s->stub = etcdserverpb::Watch::NewStub(channels[static_cast<size_t>(i) % channels.size()]);
    auto* create = s->request.mutable_create_request();
    create->set_key(prefix);
    create->set_range_end(etcd::PrefixEnd(prefix));
    s->done.fn = [this](bool) { ++finished_; };
    s->started.fn = [self, shared](bool ok) {
      if (!ok) {
        shared->failed();
        self->rw->Finish(&self->status, &self->done);
        return;
      }
      self->rw->Write(self->request, &self->wrote);
      self->rw->Read(&self->response, &self->read);
    };
    s->wrote.fn = [](bool) {};
    s->read.fn = [self, shared, deletes_only](bool ok) {
      if (!ok) {
        if (!self->created) shared->failed();
        self->rw->Finish(&self->status, &self->done);
        return;
      }
      if (self->response.created() && !self->created) {
        self->created = true;
        shared->created();
      }
      for (const auto& e : self->response.events()) {
        if (!deletes_only || e.type() == mvccpb::Event::DELETE) shared->event(self->events++);
      }
      self->rw->Read(&self->response, &self->read);
    };
    streams_.push_back(std::move(s));
  }
}

EtcdWatchers::~EtcdWatchers() = default;

void EtcdWatchers::Run() {
  for (auto& s : streams_) s->rw = s->stub->AsyncWatch(&s->context, &cq_, &s->started);
  const int count = static_cast<int>(streams_.size());
  RunQueue(cq_, [&] { return finished_ == count; });
}

void EtcdWatchers::Cancel() {
  for (auto& s : streams_) s->context.TryCancel();
}

}  // namespace muster::bench
