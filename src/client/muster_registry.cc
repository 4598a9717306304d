// NewMusterRegistry: a Registry that talks to musterd over its HTTP API
// (docs/api.md).
//
// Calls. Every call of this API is idempotent (a register of the same
// instance changes nothing, a heartbeat only renews), so each is retried on
// a transport error (Unavailable, DeadlineExceeded) or an answer that asks to
// try again (503; in cluster mode also 504, etcd did not answer in time, and
// 409, a concurrent change got in the way), up to
// max_attempts in all and within the call's overall timeout, across the
// addresses in turn: attempt k goes to address (preferred + k) mod n, where
// `preferred` is the address that answered last (so once a node is down the
// calls stay on the one that works). After every address has been tried once
// more, the next attempt waits an exponential backoff with jitter. Each
// attempt gets the remaining time divided by the attempts left (so a hung node
// cannot eat the whole budget), the last one all of it. Any other HTTP answer
// is final: 404 is NotFound and so on (ErrorOf).
// A Deregister whose earlier attempt failed in transit and whose retry hears
// 404 reports NotFound — the instance is not registered, whoever removed it;
// callers that only want it gone treat NotFound as done.
//
// Connections. Each address keeps up to max_idle_connections idle keep-alive
// HttpClients; a call borrows one (or opens a new one) and gives it back when
// the exchange went well.
//
// The subscriptions are in muster_subscriptions.cc; the class that both
// define is in muster_registry.h.
#include "client/muster_registry.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/service_query.h"
#include "core/json_codec.h"
#include "core/strings.h"
#include "core/validation.h"
#include "core/wire/answers.h"
#include "core/wire/http_client.h"
#include "core/wire/paths.h"
#include "muster/registry.h"

namespace muster {
namespace client {
namespace {

using std::chrono::milliseconds;

// Shortest time an attempt gets when later attempts are left.
constexpr milliseconds kMinAttemptTimeout{100};

// Answers that ask to try again: musterd cannot serve now (503), its store
// did not answer in time (504), or a concurrent change got in the way (409).
// Every call is idempotent, so they are retried as transport errors are.
bool AsksToRetry(int http_status) {
  return http_status == 503 || http_status == 504 || http_status == 409;
}

// The error a non-success answer stands for: the code and message musterd
// put in its error body (core/wire/errors.h), e.g. DeadlineExceeded for a
// 504 and Aborted for a 409 in cluster mode.
absl::Status ErrorOf(const wire::HttpResponse& response) {
  absl::Status status = wire::StatusFromResponse(response);
  if (status.ok()) {
    return absl::InternalError(StrCat("unexpected HTTP ", response.status, " from musterd"));
  }
  return status;
}

std::string ListTarget(const ServiceQuery& query) {
  wire::ListParams params;
  params.ns = query.ns;
  params.version = query.version;
  params.tags = query.tags;
  return wire::ListTarget(query.service, params);
}

}  // namespace

absl::Status MusterRegistry::Closed() {
  return absl::FailedPreconditionError("the registry is closed");
}

Limits MusterRegistry::ClientLimits() {
  Limits limits;
  limits.max_name_length = 1024;
  return limits;
}

milliseconds MusterRegistry::Backoff(int n, milliseconds initial, milliseconds max) {
  double delay = static_cast<double>(initial.count());
  for (int i = 0; i < n && delay < static_cast<double>(max.count()); ++i) delay *= 2;
  delay = std::min(delay, static_cast<double>(max.count()));
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  return milliseconds(static_cast<int64_t>(delay * jitter(rng)));
}

MusterRegistry::MusterRegistry(MusterRegistryOptions options) : options_(std::move(options)) {
  for (const std::string& address : options_.addresses) {
    endpoints_.push_back(std::make_unique<Endpoint>(address));
  }
}

absl::StatusOr<Instance> MusterRegistry::Register(const Instance& instance,
                                                  const CallOptions& options) {
  if (auto s = ValidateInstance(instance, limits_); !s.ok()) return s;
  auto response =
      Call({"PUT", wire::InstanceTarget(KeyOf(instance)), SerializeInstance(instance), {}},
           options.timeout, nullptr);
  if (!response.ok()) return response.status();
  if (response->status != 200 && response->status != 201) return ErrorOf(*response);
  auto stored = ParseInstance(response->body);
  if (!stored.ok()) {
    return absl::InternalError(
        StrCat("musterd answered a malformed instance: ", MessageOf(stored.status())));
  }
  return stored;
}

absl::Status MusterRegistry::Deregister(const InstanceKey& key, const CallOptions& options) {
  if (auto s = ValidateKey(key, limits_); !s.ok()) return s;
  auto response = Call({"DELETE", wire::InstanceTarget(key), {}, {}}, options.timeout, nullptr);
  if (!response.ok()) return response.status();
  return response->status == 200 ? absl::OkStatus() : ErrorOf(*response);
}

absl::Status MusterRegistry::UpdateService(const InstanceKey& key, const CallOptions& options) {
  if (auto s = ValidateKey(key, limits_); !s.ok()) return s;
  auto response =
      Call({"PUT", wire::HeartbeatTarget(key), {}, {}}, options.timeout, nullptr);
  if (!response.ok()) return response.status();
  return response->status == 200 ? absl::OkStatus() : ErrorOf(*response);
}

absl::StatusOr<ServiceList> MusterRegistry::ListServices(const ServiceQuery& query,
                                                         const CallOptions& options) {
  if (auto s = ValidateQuery(query, limits_); !s.ok()) return s;
  return List(query, options.timeout, nullptr);
}

absl::StatusOr<wire::HttpResponse> MusterRegistry::Call(const wire::HttpRequest& request,
                                                        milliseconds timeout,
                                                        const std::atomic<bool>* cancel) {
  if (closed_) return Closed();
  if (timeout.count() <= 0) {
    return absl::DeadlineExceededError("the call's timeout is not positive");
  }
  const auto deadline = Clock::now() + timeout;
  const size_t n = endpoints_.size();
  const size_t start = preferred_.load(std::memory_order_relaxed);
  absl::Status last = absl::UnavailableError("no attempt was made");
  auto out_of_time = [&](int attempts) {
    return absl::DeadlineExceededError(
        StrCat("the call's timeout of ", timeout.count(), " ms passed after ", attempts,
               attempts == 1 ? " attempt" : " attempts", "; last error: ", MessageOf(last)));
  };
  for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
    if (attempt > 0 && attempt % static_cast<int>(n) == 0) {
      // Every address failed once more: back off before the next round.
      milliseconds pause = Backoff(attempt / static_cast<int>(n) - 1, options_.initial_backoff,
                                   options_.max_backoff);
      if (Clock::now() + pause >= deadline) return out_of_time(attempt);
      if (!Sleep(pause, cancel)) break;
    }
    const auto remaining = std::chrono::ceil<milliseconds>(deadline - Clock::now());
    if (remaining.count() <= 0) return out_of_time(attempt);
    const int left = options_.max_attempts - attempt;
    const milliseconds attempt_timeout =
        left > 1 ? std::max(remaining / left, std::min(remaining, kMinAttemptTimeout))
                 : remaining;

    const size_t index = (start + static_cast<size_t>(attempt)) % n;
    Endpoint& endpoint = *endpoints_[index];
    std::unique_ptr<wire::HttpClient> connection = endpoint.Acquire();
    auto response = connection->Do(request, attempt_timeout);
    if (response.ok()) {
      if (!closed_) endpoint.Release(std::move(connection), options_.max_idle_connections);
      if (!AsksToRetry(response->status)) {
        preferred_.store(index, std::memory_order_relaxed);
        return response;
      }
      last = ErrorOf(*response);
    } else {
      last = response.status();  // the connection is dropped with the client
    }
    if (closed_ || (cancel != nullptr && *cancel)) break;
  }
  if (closed_) return Closed();
  if (cancel != nullptr && *cancel) return absl::CancelledError("the subscription stopped");
  if (absl::IsDeadlineExceeded(last) || absl::IsAborted(last)) return last;
  return absl::UnavailableError(StrCat("musterd is unreachable after ", options_.max_attempts,
                                       options_.max_attempts == 1 ? " attempt" : " attempts",
                                       ": ", MessageOf(last)));
}

absl::StatusOr<ServiceList> MusterRegistry::List(const ServiceQuery& query, milliseconds timeout,
                                                 const std::atomic<bool>* cancel) {
  auto response = Call({"GET", ListTarget(query), {}, {}}, timeout, cancel);
  if (!response.ok()) return response.status();
  if (response->status != 200) return ErrorOf(*response);
  auto answer = wire::DecodeListAnswer(response->body);
  if (!answer.ok()) return answer.status();
  return ServiceList{answer->revision, std::move(answer->instances)};
}

bool MusterRegistry::Sleep(milliseconds duration, const std::atomic<bool>* cancel) {
  const auto deadline = std::chrono::steady_clock::now() + duration;
  auto stopped = [&] { return closed_ || (cancel != nullptr && *cancel); };
  MutexLock lock(wake_mu_);
  while (!stopped() && wake_cv_.WaitUntil(wake_mu_, deadline)) {
  }
  return !stopped();
}

}  // namespace client

absl::StatusOr<std::unique_ptr<Registry>> NewMusterRegistry(const MusterRegistryOptions& options) {
  if (options.addresses.empty()) {
    return absl::InvalidArgumentError("a musterd registry needs at least one address");
  }
  for (const std::string& address : options.addresses) {
    if (auto split = SplitHostPort(address, AddressUse::kDial); !split.ok()) {
      return absl::InvalidArgumentError(
          StrCat("bad musterd address \"", address, "\": ", MessageOf(split.status())));
    }
  }
  if (options.max_attempts < 1) {
    return absl::InvalidArgumentError("max_attempts must be at least 1");
  }
  if (options.initial_backoff.count() < 0 || options.max_backoff < options.initial_backoff) {
    return absl::InvalidArgumentError(
        "backoffs must satisfy 0 <= initial_backoff <= max_backoff");
  }
  // A limit at or below musterd's --watch-keepalive would reopen quiet streams
  // for nothing, but the server's setting is not known here: only documented.
  if (options.stream_idle_timeout.count() <= 0) {
    return absl::InvalidArgumentError("stream_idle_timeout must be positive");
  }
  return std::unique_ptr<Registry>(std::make_unique<client::MusterRegistry>(options));
}

}  // namespace muster
