#include "server/xds/xds_server.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <utility>

#include "core/strings.h"
#include "core/validation.h"
#include "server/xds/ads_stream.h"

namespace muster::xds {

namespace {

using envoy::service::discovery::v3::AggregatedDiscoveryService;
using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;

class AdsService final : public AggregatedDiscoveryService::CallbackService {
 public:
  explicit AdsService(XdsShared& shared) : shared_(shared) {}

  grpc::ServerBidiReactor<DiscoveryRequest, DiscoveryResponse>* StreamAggregatedResources(
      grpc::CallbackServerContext* context) override {
    if (shared_.counters.streams.load(std::memory_order_relaxed) >= shared_.options.max_streams) {
      const grpc::Status refuse(
          grpc::StatusCode::RESOURCE_EXHAUSTED,
          StrCat("musterd serves at most ", shared_.options.max_streams, " xDS streams at once"));
      spdlog::warn("xDS stream from {} refused: {}", context->peer(), refuse.error_message());
      return AdsStream::Open(shared_, context->peer(), &refuse);
    }
    return AdsStream::Open(shared_, context->peer(), nullptr);
  }

 private:
  XdsShared& shared_;
};

}  // namespace

struct XdsServer::Impl {
  // Declared in the order they are built; the server goes first.
  std::unique_ptr<XdsShared> shared;
  std::unique_ptr<AdsService> service;
  std::unique_ptr<grpc::Server> server;
  Mutex stop_mu;
  bool stopped ABSL_GUARDED_BY(stop_mu) = false;
};

absl::StatusOr<std::unique_ptr<XdsServer>> XdsServer::Start(XdsOptions options,
                                                            CatalogView& catalog) {
  absl::StatusOr<std::pair<std::string, uint16_t>> hp =
      SplitHostPort(options.listen, AddressUse::kListen);
  if (!hp.ok()) {
    return absl::InvalidArgumentError(StrCat("--xds-listen: ", hp.status().message()));
  }
  const bool v6 = hp->first.find(':') != std::string::npos;
  const std::string host = v6 ? StrCat("[", hp->first, "]") : hp->first;

  auto impl = std::make_unique<Impl>();
  const size_t max_request_bytes = options.max_request_bytes;
  impl->shared = std::make_unique<XdsShared>(std::move(options), catalog);
  impl->service = std::make_unique<AdsService>(*impl->shared);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(StrCat(host, ":", hp->second), grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(impl->service.get());
  builder.SetMaxReceiveMessageSize(static_cast<int>(max_request_bytes));
  // gRPC binds with SO_REUSEPORT unless told not to: a second musterd on the
  // same port would start and share it, each taking some of the streams.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // A client that vanished without a word is found by keepalive pings, so
  // that its stream and its hub subscriptions do not linger.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60 * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20 * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10 * 1000);
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr || port == 0) {
    impl->shared->pusher->Stop();
    return absl::UnavailableError(
        StrCat("cannot listen on ", impl->shared->options.listen,
               " for xDS (--xds-listen): the address is in use or not on this host"));
  }
  std::string address = StrCat(host, ":", port);
  return std::unique_ptr<XdsServer>(new XdsServer(std::move(impl), std::move(address)));
}

XdsServer::XdsServer(std::unique_ptr<Impl> impl, std::string address)
    : impl_(std::move(impl)), address_(std::move(address)) {}

XdsServer::~XdsServer() { Stop(); }

void XdsServer::Stop() {
  {
    MutexLock lock(impl_->stop_mu);
    if (impl_->stopped) return;
    impl_->stopped = true;
  }
  // Streams never end by themselves: cancel them now.
  impl_->server->Shutdown(std::chrono::system_clock::now());
  impl_->server->Wait();
  impl_->shared->pusher->Stop();
}

XdsStats XdsServer::stats() const {
  const XdsShared::Counters& c = impl_->shared->counters;
  XdsStats s;
  s.streams = c.streams.load(std::memory_order_relaxed);
  s.streams_total = c.streams_total.load(std::memory_order_relaxed);
  s.streams_refused = c.streams_refused.load(std::memory_order_relaxed);
  s.requests = c.requests.load(std::memory_order_relaxed);
  s.responses = c.responses.load(std::memory_order_relaxed);
  s.acks = c.acks.load(std::memory_order_relaxed);
  s.nacks = c.nacks.load(std::memory_order_relaxed);
  return s;
}

}  // namespace muster::xds
