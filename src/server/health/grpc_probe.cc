// The gRPC check: calls grpc.health.v1.Health/Check (the standard health
// service) with the check's service name. SERVING is passing; any other
// answer, and any RPC error, is critical.
//
// Each probe owns one channel, made with the probe and kept: gRPC reconnects
// it in the background, with a short backoff so that a target that comes
// back is seen at the next run. The call uses gRPC's callback API, so no
// thread waits for it.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "core/duration.h"
#include "core/mutex.h"
#include "core/strings.h"
#include "health.grpc.pb.h"
#include "server/async_util.h"
#include "server/health/probe.h"

namespace muster {
namespace {

using HealthService = grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

// Reconnect backoff of the probe's channel. gRPC's default (1 s growing to
// 120 s) would leave a restarted target critical for minutes.
constexpr int kInitialBackoffMs = 100;
constexpr int kMaxBackoffMs = 1000;

std::string_view CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "UNKNOWN";
  }
}

// One call in flight. gRPC holds it (through the completion callback) until
// the call ends; the probe sees it only through a weak reference.
struct GrpcCall {
  // Hands the call between our threads and gRPC's (whose own
  // synchronisation a race detector cannot see), and orders the start of the
  // call against Cancel: TryCancel is called only on a call that started.
  // Never held while gRPC runs our callback: it may run inline.
  Mutex mu;
  bool started ABSL_GUARDED_BY(mu) = false;
  bool cancel ABSL_GUARDED_BY(mu) = false;  // asked for before the start
  ProbeCallback done ABSL_GUARDED_BY(mu);
  // Set up before the start, read after the end; gRPC's in between.
  grpc::ClientContext context;
  HealthCheckRequest request;
  HealthCheckResponse response;
};

class GrpcProbe final : public Probe, public std::enable_shared_from_this<GrpcProbe> {
 public:
  GrpcProbe(std::string endpoint, std::string service, std::shared_ptr<grpc::Channel> channel,
            asio::any_io_executor executor)
      : endpoint_(std::move(endpoint)),
        service_(std::move(service)),
        channel_(std::move(channel)),
        stub_(HealthService::NewStub(channel_)),
        executor_(std::move(executor)) {}

  void Run(std::chrono::milliseconds timeout, ProbeCallback done) override {
    auto call = std::make_shared<GrpcCall>();
    {
      MutexLock call_lock(call->mu);
      call->done = std::move(done);
      call->request.set_service(service_);
      call->context.set_deadline(std::chrono::system_clock::now() + timeout);
    }
    {
      MutexLock lock(mu_);
      // A probe is cancelled for good (its check went away): later runs end
      // at once.
      if (cancelled_) {
        asio::post(executor_, [call] {
          ProbeCallback cancelled;
          {
            MutexLock call_lock(call->mu);
            cancelled = std::move(call->done);
          }
          std::move(cancelled)({Health::kCritical, "cancelled"});
        });
        return;
      }
      current_ = call;
    }
    stub_->async()->Check(&call->context, &call->request, &call->response,
                          [self = shared_from_this(), call, timeout](grpc::Status status) mutable {
                            GrpcProbe* probe = self.get();
                            probe->Finish(std::move(self), std::move(call), status, timeout);
                          });
    MutexLock call_lock(call->mu);
    call->started = true;
    if (call->cancel) call->context.TryCancel();
  }

  void Cancel() override {
    MutexLock lock(mu_);
    cancelled_ = true;
    if (auto call = current_.lock()) {
      MutexLock call_lock(call->mu);
      if (call->started) {
        call->context.TryCancel();
      } else {
        call->cancel = true;
      }
    }
  }

 private:
  // On a gRPC thread: judges the answer and hands it to `done` on the
  // executor, so that the caller's work does not hold up gRPC's threads.
  // `self` and `call` (the callback's references, moved out of it) go along:
  // the probe, its channel and the call's context are let go on the
  // executor, never on a gRPC thread inside gRPC's own callback (where the
  // last reference to a channel could be dropped while gRPC still unwinds,
  // or while the process exits).
  void Finish(std::shared_ptr<GrpcProbe> self, std::shared_ptr<GrpcCall> call,
              const grpc::Status& status, std::chrono::milliseconds timeout) {
    ProbeCallback done;
    HealthCheckResponse::ServingStatus serving;
    {
      MutexLock call_lock(call->mu);
      done = std::move(call->done);
      serving = call->response.status();
    }
    ProbeResult result{Health::kCritical, ""};
    if (status.ok()) {
      if (serving == HealthCheckResponse::SERVING) result.status = Health::kPassing;
      result.output = HealthCheckResponse::ServingStatus_Name(serving);
      if (result.output.empty()) result.output = StrCat("serving status ", static_cast<int>(serving));
    } else if (status.error_code() == grpc::StatusCode::CANCELLED && Cancelled()) {
      result.output = "cancelled";
    } else if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      result.output = StrCat("timed out after ", FormatDuration(timeout), " (gRPC health check of ",
                             endpoint_, ")");
    } else {
      result.output = StrCat(CodeName(status.error_code()), ": ", status.error_message());
      if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
        StrAppend(&result.output, " (the server does not know the service \"", service_, "\")");
      }
    }
    result.output = BoundedOutput(std::move(result.output), "gRPC check failed");
    asio::post(executor_, [done = std::move(done), result = std::move(result),
                           self = std::move(self), call = std::move(call)]() mutable {
      std::move(done)(std::move(result));
    });
  }

  bool Cancelled() {
    MutexLock lock(mu_);
    return cancelled_;
  }

  // Constant after construction.
  const std::string endpoint_;  // host:port
  const std::string service_;
  const std::shared_ptr<grpc::Channel> channel_;
  const std::unique_ptr<HealthService::Stub> stub_;
  const asio::any_io_executor executor_;

  Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::weak_ptr<GrpcCall> current_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::shared_ptr<Probe>> MakeGrpcProbe(const Check& check, const Instance& instance,
                                                     const ProbeEnvironment& env) {
  auto target = DialTargetOf(check, instance);
  if (!target.ok()) return target.status();
  const std::string& endpoint = target->endpoint;
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, kInitialBackoffMs);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, kMaxBackoffMs);
  // Despite its name, gRPC takes this as the shortest time a connection
  // attempt may take (default 20 s): as long as the check may wait.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS,
              static_cast<int>(std::max<int64_t>(check.timeout.count(), kInitialBackoffMs)));
  // A health check is not a call to retry: one attempt per run.
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  args.SetUserAgentPrefix("musterd-health-check");
  // "host:port" goes to gRPC's default (DNS) resolver, which also takes IP
  // addresses and bracketed IPv6 addresses.
  auto channel = grpc::CreateCustomChannel(endpoint, grpc::InsecureChannelCredentials(), args);
  return std::make_shared<GrpcProbe>(endpoint, check.grpc_service, std::move(channel), env.executor);
}

}  // namespace muster
