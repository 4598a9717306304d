// Asynchronous gRPC load plumbing (see grpc_load.h).
#include "registry/grpc_load.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/support/channel_arguments.h>

namespace muster::bench {

std::vector<std::shared_ptr<grpc::Channel>> MakeChannels(const std::string& address, int count) {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < count; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("muster.bench.channel", i);
    args.SetMaxReceiveMessageSize(64 * 1024 * 1024);
    channels.push_back(grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
  }
  return channels;
}

void RunQueue(grpc::CompletionQueue& cq, const std::function<bool()>& finished) {
  void* tag = nullptr;
  bool ok = false;
  while (!finished() && cq.Next(&tag, &ok)) static_cast<Tag*>(tag)->Proceed(ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) static_cast<Tag*>(tag)->Proceed(false);
}

LoadResult RunGrpcLoad(int inflight, double seconds, const StartOp& start) {
  grpc::CompletionQueue cq;
  LoadResult result;
  const Clock::time_point begin = Clock::now();
  const Clock::time_point deadline =
      begin + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  Clock::time_point last = begin;
  int active = inflight;
  std::function<void(int)> launch = [&](int slot) {
    if (seconds > 0 && Clock::now() >= deadline) {
      --active;
      return;
    }
    const Clock::time_point sent = Clock::now();
    const bool started = start(&cq, slot, [&, slot, sent](bool ok, const std::string& error) {
      const Clock::time_point done = Clock::now();
      last = done;
      if (ok) {
        ++result.ok;
        result.latency.Add(done - sent);
      } else {
        ++result.failed;
        if (result.first_error.empty()) result.first_error = error;
      }
      launch(slot);
    });
    if (!started) --active;
  };
  for (int slot = 0; slot < inflight; ++slot) launch(slot);
  RunQueue(cq, [&] { return active == 0; });
  result.seconds = std::chrono::duration<double>(last - begin).count();
  return result;
}

}  // namespace muster::bench
