// Many ADS streams on one completion queue (see xds_streams.h).
#include "registry/xds_streams.h"

#include <algorithm>
#include <charconv>
#include <optional>

#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "registry/grpc_load.h"

namespace muster::bench {
namespace {

using envoy::service::discovery::v3::AggregatedDiscoveryService;
using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;

constexpr char kEdsType[] = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
// Instance numbers above this are not ours: not tracked.
constexpr int kMaxTracked = 1 << 20;

}  // namespace

struct XdsStreams::Stream {
  int index = 0;
  std::unique_ptr<AggregatedDiscoveryService::Stub> stub;
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientAsyncReaderWriter<DiscoveryRequest, DiscoveryResponse>> rw;
  DiscoveryRequest out;                     // being written
  std::optional<DiscoveryRequest> pending;  // the next write, when one is in flight
  DiscoveryResponse response;
  grpc::Status status;
  FnTag started, wrote, read, done;
  bool writing = false;
  bool ended = false;    // a read or write failed: no more writes
  bool answered = false;  // has had its first response
  std::vector<bool> seen;  // by instance number: arrived already
};

XdsStreams::XdsStreams(const std::vector<std::shared_ptr<grpc::Channel>>& channels, std::string resource,
                       std::string id_prefix, int count, Hooks hooks)
    : resource_(std::move(resource)),
      id_prefix_(std::move(id_prefix)),
      hooks_(std::move(hooks)),
      arena_block_(size_t{1} << 20) {
  google::protobuf::ArenaOptions options;
  options.initial_block = arena_block_.data();
  options.initial_block_size = arena_block_.size();
  arena_ = std::make_unique<google::protobuf::Arena>(options);
  for (int i = 0; i < count; ++i) {
    auto s = std::make_unique<Stream>();
    Stream* self = s.get();
    s->index = i;
    s->stub = AggregatedDiscoveryService::NewStub(channels[static_cast<size_t>(i) % channels.size()]);
    s->started.fn = [this, self](bool ok) {
      if (!ok) {
        self->ended = true;
        hooks_.failed();
        self->rw->Finish(&self->status, &self->done);
        return;
      }
      Start(*self);
    };
    s->wrote.fn = [this, self](bool ok) { OnWrote(*self, ok); };
    s->read.fn = [this, self](bool ok) { OnRead(*self, ok); };
    s->done.fn = [this](bool) { ++finished_; };
    streams_.push_back(std::move(s));
  }
}

XdsStreams::~XdsStreams() = default;

void XdsStreams::Run() {
  for (auto& s : streams_) s->rw = s->stub->AsyncStreamAggregatedResources(&s->context, &cq_, &s->started);
  const int count = static_cast<int>(streams_.size());
  RunQueue(cq_, [&] { return finished_ == count; });
}

void XdsStreams::Cancel() {
  for (auto& s : streams_) s->context.TryCancel();
}

void XdsStreams::Start(Stream& s) {
  s.out.Clear();
  s.out.mutable_node()->set_id("registry-bench-" + std::to_string(s.index));
  s.out.set_type_url(kEdsType);
  s.out.add_resource_names(resource_);
  s.writing = true;
  s.rw->Write(s.out, &s.wrote);
  s.rw->Read(&s.response, &s.read);
}

void XdsStreams::Write(Stream& s) {
  s.out = std::move(*s.pending);
  s.pending.reset();
  s.writing = true;
  ++counts_.acks;
  s.rw->Write(s.out, &s.wrote);
}

void XdsStreams::OnWrote(Stream& s, bool ok) {
  s.writing = false;
  if (!ok) s.ended = true;
  if (!s.ended && s.pending) Write(s);
}

void XdsStreams::OnRead(Stream& s, bool ok) {
  if (!ok) {
    s.ended = true;
    if (!s.answered) hooks_.failed();
    s.rw->Finish(&s.status, &s.done);
    return;
  }
  const DiscoveryResponse& r = s.response;
  if (r.type_url() != kEdsType) {
    ++counts_.unexpected;
  } else {
    ++counts_.responses;
    counts_.largest = std::max<uint64_t>(counts_.largest, r.ByteSizeLong());
    if (!s.answered) {
      s.answered = true;
      hooks_.ready();
    }
    for (const auto& any : r.resources()) {
      auto& assignment =
          *google::protobuf::Arena::CreateMessage<envoy::config::endpoint::v3::ClusterLoadAssignment>(
              arena_.get());
      if (!any.UnpackTo(&assignment) || assignment.cluster_name() != resource_) {
        ++counts_.unexpected;
        continue;
      }
      for (const auto& locality : assignment.endpoints()) {
        const std::string& id = locality.locality().sub_zone();
        if (id.compare(0, id_prefix_.size(), id_prefix_) != 0) continue;
        int nth = -1;
        const char* begin = id.data() + id_prefix_.size();
        const auto [end, ec] = std::from_chars(begin, id.data() + id.size(), nth);
        if (ec != std::errc() || end != id.data() + id.size() || nth < 0 || nth >= kMaxTracked) continue;
        const auto at = static_cast<size_t>(nth);
        if (s.seen.size() <= at) s.seen.resize(at + 1, false);
        if (s.seen[at]) continue;
        s.seen[at] = true;
        hooks_.arrived(s.index, nth);
      }
    }
    arena_->Reset();
    // The ACK: the response's version and nonce, the same name followed.
    DiscoveryRequest ack;
    ack.set_type_url(kEdsType);
    ack.add_resource_names(resource_);
    ack.set_version_info(r.version_info());
    ack.set_response_nonce(r.nonce());
    s.pending = std::move(ack);
    if (!s.writing && !s.ended) Write(s);
  }
  s.rw->Read(&s.response, &s.read);
}

}  // namespace muster::bench
