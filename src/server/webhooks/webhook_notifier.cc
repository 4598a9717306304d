// The notifier runs one sender coroutine per URL on a single thread with an
// io_context of its own. A sender takes the oldest event off its queue, tries
// it until it is delivered, fails for good or runs out of attempts, then
// takes the next. Notify only touches the queues (under each URL's mutex) and
// wakes an idle sender with a post; it never waits for the network.
//
// Stop stops the io_context, joins the thread and then destroys the
// io_context: that destroys the suspended senders, and with them the socket
// of the attempt in flight (closing it) and any backoff timer.
#include "server/webhooks/webhook_notifier.h"

#include <pthread.h>

#include <algorithm>
#include <deque>
#include <exception>
#include <functional>
#include <optional>
#include <random>
#include <string_view>
#include <utility>

#include <boost/beast/http/field.hpp>
#include <spdlog/spdlog.h>

#include "core/duration.h"
#include "core/strings.h"
#include "server/async_util.h"
#include "server/outbound/http_call.h"
#include "server/outbound/http_url.h"
#include "server/outbound/tls_client.h"

namespace muster {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::string_view kUserAgent = "musterd-webhook";
// Drops are warned about at most this often per URL.
constexpr Clock::duration kDropWarningInterval = std::chrono::seconds(10);
// Of a failed answer's body, this much goes into the log line.
constexpr size_t kLoggedBodyBytes = 256;

enum class Outcome { kDelivered, kRetry, kFailed };

struct AttemptResult {
  Outcome outcome = Outcome::kRetry;
  // For logs: "HTTP 503 Service Unavailable: ...", "connect to
  // 127.0.0.1:9: Connection refused".
  std::string detail;
  // From a Retry-After header (seconds) on a 429 or 503 answer.
  milliseconds retry_after{0};
};

// Printable, bounded text from an answer body for a log line.
std::string LoggableBody(std::string_view body) {
  std::string out(body.substr(0, kLoggedBodyBytes));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  if (body.size() > kLoggedBodyBytes) out += "...";
  return out;
}

bool IsRetryableStatus(unsigned code) { return code >= 500 || code == 408 || code == 429; }

// "Retry-After: 120" (the HTTP-date form is ignored).
milliseconds ParseRetryAfter(std::string_view value) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty() || value.size() > 9) return milliseconds(0);
  int64_t seconds = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return milliseconds(0);
    seconds = seconds * 10 + (c - '0');
  }
  return std::chrono::seconds(seconds);
}

}  // namespace

// A webhook URL, parsed once by Start.
struct WebhookNotifier::Url {
  outbound::HttpUrl parsed;
  // For logs: the URL without its path, which may hold a secret token:
  // "webhook 2 (https://hooks.example.com)".
  std::string name;
};

// The notifier's state for one URL.
struct WebhookNotifier::Endpoint {
  Endpoint(Url u, const WebhookOptions& o, std::shared_ptr<const outbound::TlsClient> t,
           const asio::any_io_executor& executor, uint32_t seed)
      : url(std::move(u)),
        attempts(o.attempts),
        timeout(o.timeout),
        initial_backoff(o.initial_backoff),
        max_backoff(o.max_backoff),
        tls(std::move(t)),
        random(seed) {
    wakeup.emplace(executor);
    wake = wakeup->Notifier();
  }

  // The sender: delivers the queue's events in order, forever.
  awaitable<void> Run();
  // Tries one event until it is delivered, failed or out of attempts.
  awaitable<void> Deliver(const std::string& body);
  // One try, within `timeout`.
  awaitable<AttemptResult> Attempt(const std::string& body);
  milliseconds Backoff(uint32_t retry, milliseconds retry_after);

  // Constant after construction.
  const Url url;
  const uint32_t attempts;
  const milliseconds timeout;
  const milliseconds initial_backoff;
  const milliseconds max_backoff;
  const std::shared_ptr<const outbound::TlsClient> tls;  // the notifier's; null without https

  // The sender's, on the notifier's thread only (Stop resets `wakeup` once
  // that thread ended, before the io_context its timer uses goes away).
  std::optional<Wakeup> wakeup;
  std::mt19937 random;  // backoff jitter
  // Wakes the sender. Called by Notify under the notifier's mu_ while
  // !stopped_ (so the io_context is alive); reset by Stop.
  std::function<void()> wake;

  mutable Mutex mu;
  // Events waiting, oldest first; at most queue_limit.
  std::deque<std::shared_ptr<const std::string>> queue ABSL_GUARDED_BY(mu);
  // The sender found the queue empty and waits: the next Notify wakes it.
  bool idle ABSL_GUARDED_BY(mu) = false;
  // The sender has taken an event off the queue and not finished with it.
  bool busy ABSL_GUARDED_BY(mu) = false;
  Stats stats ABSL_GUARDED_BY(mu);  // all but `queued`
  uint64_t unreported_drops ABSL_GUARDED_BY(mu) = 0;
  std::optional<Clock::time_point> last_drop_warning ABSL_GUARDED_BY(mu);
};

awaitable<void> WebhookNotifier::Endpoint::Run() {
  for (;;) {
    wakeup->Arm(Clock::time_point::max());
    std::shared_ptr<const std::string> event;
    {
      MutexLock lock(mu);
      if (queue.empty()) {
        idle = true;
      } else {
        event = std::move(queue.front());
        queue.pop_front();
        busy = true;
      }
    }
    if (!event) {
      co_await wakeup->Wait();
      continue;
    }
    bool failed = false;
    try {
      co_await Deliver(*event);
    } catch (const std::exception& e) {
      spdlog::error("{}: event not delivered: internal error: {}", url.name, e.what());
      failed = true;
    }
    MutexLock lock(mu);
    if (failed) ++stats.failed;
    busy = false;
  }
}

awaitable<void> WebhookNotifier::Endpoint::Deliver(const std::string& body) {
  asio::steady_timer pause(co_await asio::this_coro::executor);
  for (uint32_t attempt = 1;; ++attempt) {
    if (attempt > 1) {
      MutexLock lock(mu);
      ++stats.retries;
    }
    const AttemptResult result = co_await Attempt(body);
    if (result.outcome == Outcome::kDelivered) {
      MutexLock lock(mu);
      ++stats.delivered;
      co_return;
    }
    if (result.outcome == Outcome::kFailed) {
      spdlog::warn("{}: event not delivered, not retried: {}", url.name, result.detail);
      MutexLock lock(mu);
      ++stats.failed;
      co_return;
    }
    if (attempt >= attempts) {
      spdlog::warn("{}: event not delivered after {} attempt{}: {}", url.name, attempt,
                   attempt == 1 ? "" : "s", result.detail);
      MutexLock lock(mu);
      ++stats.failed;
      co_return;
    }
    const milliseconds delay = Backoff(attempt, result.retry_after);
    spdlog::debug("{}: attempt {} of {} failed ({}); next in {}", url.name, attempt, attempts,
                  result.detail, FormatDuration(delay));
    pause.expires_after(delay);
    co_await pause.async_wait(use_tuple);
  }
}

milliseconds WebhookNotifier::Endpoint::Backoff(uint32_t retry, milliseconds retry_after) {
  milliseconds base = initial_backoff;
  for (uint32_t i = 1; i < retry && base < max_backoff; ++i) base *= 2;
  base = std::min(base, max_backoff);
  std::uniform_int_distribution<int64_t> jitter(base.count() / 2, base.count());
  milliseconds delay(jitter(random));
  if (retry_after > delay) delay = std::min(retry_after, max_backoff);
  return delay;
}

awaitable<AttemptResult> WebhookNotifier::Endpoint::Attempt(const std::string& body) {
  auto call = outbound::HttpCall::Make(co_await asio::this_coro::executor, url.parsed, tls);
  outbound::Request request = outbound::NewRequest(url.parsed, "POST", kUserAgent);
  request.set(boost::beast::http::field::content_type, "application/json");
  request.body() = body;
  outbound::ExchangeOptions options;
  options.timeout = timeout;
  // A failed answer's body goes into the log line (one byte more than is
  // logged, to tell that it was cut).
  options.body_bytes = [](unsigned code) {
    return code >= 200 && code < 300 ? 0 : kLoggedBodyBytes + 1;
  };
  auto answer = co_await call->Run(std::move(request), std::move(options));
  // No answer (connect error, timeout, ...): worth another try.
  if (!answer.ok()) co_return AttemptResult{Outcome::kRetry, std::string(MessageOf(answer.status()))};

  const unsigned code = answer->status;
  if (code >= 200 && code < 300) co_return AttemptResult{Outcome::kDelivered, "", milliseconds(0)};
  AttemptResult result;
  result.detail = answer->StatusLine();
  if (code >= 300 && code < 400) result.detail += " (redirects are not followed)";
  result.outcome = IsRetryableStatus(code) ? Outcome::kRetry : Outcome::kFailed;
  if (code == 429 || code == 503) {
    if (auto retry_after = answer->Header("Retry-After")) result.retry_after = ParseRetryAfter(*retry_after);
  }
  if (!answer->body.empty()) StrAppend(&result.detail, ": ", LoggableBody(answer->body));
  co_return result;
}

// The io_context and what lives with it.
struct WebhookNotifier::Io {
  // For https URLs; every exchange holds it too, so it outlives their streams.
  std::shared_ptr<const outbound::TlsClient> tls;
  asio::io_context ioc{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{ioc.get_executor()};
};

namespace {

absl::Status BadUrl(std::string_view url, std::string_view why) {
  return absl::InvalidArgumentError(StrCat("webhook URL \"", url, "\": ", why));
}

}  // namespace

absl::StatusOr<std::unique_ptr<WebhookNotifier>> WebhookNotifier::Start(WebhookOptions options) {
  if (options.queue_limit == 0) {
    return absl::InvalidArgumentError("the webhook queue limit must be at least 1");
  }
  if (options.attempts == 0) {
    return absl::InvalidArgumentError("webhook attempts must be at least 1");
  }
  if (options.timeout <= milliseconds(0)) {
    return absl::InvalidArgumentError("the webhook timeout must be positive");
  }
  if (options.initial_backoff < milliseconds(0) || options.max_backoff < options.initial_backoff) {
    return absl::InvalidArgumentError(
        "webhook backoff: the initial backoff must be at least 0 and at most the maximum");
  }

  std::vector<Url> urls;
  bool any_tls = false;
  for (size_t i = 0; i < options.urls.size(); ++i) {
    const std::string& text = options.urls[i];
    auto parsed = outbound::ParseHttpUrl(text);
    if (!parsed.ok()) return BadUrl(text, MessageOf(parsed.status()));
    Url url{*std::move(parsed), ""};
    url.name = StrCat("webhook ", i + 1, " (", url.parsed.Origin(), ")");
    for (size_t j = 0; j < i; ++j) {
      if (options.urls[j] == text) return BadUrl(text, "listed twice");
    }
    any_tls = any_tls || url.parsed.tls;
    urls.push_back(std::move(url));
  }

  auto io = std::make_unique<Io>();
  if (any_tls) {
    outbound::TlsClientOptions tls_options;
    tls_options.verify = !options.tls_skip_verify;
    auto tls = outbound::TlsClient::Make(tls_options);
    if (!tls.ok()) return absl::FailedPreconditionError(StrCat("webhooks: ", MessageOf(tls.status())));
    io->tls = *std::move(tls);
  }

  std::random_device seeds;
  std::vector<std::unique_ptr<Endpoint>> endpoints;
  for (Url& url : urls) {
    endpoints.push_back(std::make_unique<Endpoint>(std::move(url), options, io->tls,
                                                   io->ioc.get_executor(), seeds()));
  }
  if (!endpoints.empty()) {
    spdlog::info("webhooks: health events go to {} URL{}", endpoints.size(),
                 endpoints.size() == 1 ? "" : "s");
  }
  return std::unique_ptr<WebhookNotifier>(
      new WebhookNotifier(std::move(options), std::move(endpoints), std::move(io)));
}

WebhookNotifier::WebhookNotifier(WebhookOptions options,
                                 std::vector<std::unique_ptr<Endpoint>> endpoints,
                                 std::unique_ptr<Io> io)
    : options_(std::move(options)), endpoints_(std::move(endpoints)), io_(std::move(io)) {
  for (const auto& endpoint : endpoints_) {
    // Run() ends only by an exception that escaped it (or at Stop, quietly).
    asio::co_spawn(io_->ioc, endpoint->Run(), [name = endpoint->url.name](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("{}: webhook sender ended: {}", name, ex.what());
      }
    });
  }
  thread_ = std::thread([io = io_.get()] {
    pthread_setname_np(pthread_self(), "musterd-webhook");
    for (;;) {
      try {
        io->ioc.run();
        return;
      } catch (const std::exception& e) {
        spdlog::error("webhooks: {}", e.what());
      }
    }
  });
}

WebhookNotifier::~WebhookNotifier() { Stop(); }

void WebhookNotifier::Notify(std::string json_body) {
  if (endpoints_.empty()) return;
  auto event = std::make_shared<const std::string>(std::move(json_body));
  // Drop warnings are logged once the mutexes are released.
  struct DropWarning {
    const Endpoint* endpoint;
    uint64_t since_last;  // drops since the last warning
    uint64_t total;
  };
  std::vector<DropWarning> warnings;
  {
    MutexLock lock(mu_);
    if (stopped_) return;
    for (const auto& endpoint : endpoints_) {
      bool wake = false;
      {
        MutexLock endpoint_lock(endpoint->mu);
        endpoint->queue.push_back(event);
        if (endpoint->queue.size() > options_.queue_limit) {
          endpoint->queue.pop_front();
          ++endpoint->stats.dropped;
          ++endpoint->unreported_drops;
          const Clock::time_point now = Clock::now();
          if (!endpoint->last_drop_warning ||
              now - *endpoint->last_drop_warning >= kDropWarningInterval) {
            endpoint->last_drop_warning = now;
            warnings.push_back({endpoint.get(), std::exchange(endpoint->unreported_drops, 0),
                                endpoint->stats.dropped});
          }
        }
        if (endpoint->idle) {
          endpoint->idle = false;
          wake = true;
        }
      }
      if (wake) endpoint->wake();  // the io_context is alive: !stopped_ under mu_
    }
  }
  for (const DropWarning& w : warnings) {
    spdlog::warn("{}: queue full ({} events waiting), the oldest dropped: {} since the last "
                 "warning, {} in all; the receiver is down or slower than the events come",
                 w.endpoint->url.name, options_.queue_limit, w.since_last, w.total);
  }
}

WebhookNotifier::Stats WebhookNotifier::stats() const {
  Stats total;
  for (const auto& endpoint : endpoints_) {
    MutexLock lock(endpoint->mu);
    total.delivered += endpoint->stats.delivered;
    total.failed += endpoint->stats.failed;
    total.dropped += endpoint->stats.dropped;
    total.retries += endpoint->stats.retries;
    total.queued += endpoint->queue.size();
  }
  return total;
}

void WebhookNotifier::Stop() {
  std::unique_ptr<Io> io;
  {
    MutexLock lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    io = std::move(io_);
  }
  io->ioc.stop();
  if (thread_.joinable()) thread_.join();
  // The timers go before the io_context they belong to.
  for (const auto& endpoint : endpoints_) {
    endpoint->wake = nullptr;
    endpoint->wakeup.reset();
  }
  // Destroys the suspended senders: the attempt in flight loses its
  // connection, a backoff wait its timer.
  io.reset();

  size_t abandoned = 0;
  size_t cut_short = 0;
  for (const auto& endpoint : endpoints_) {
    MutexLock lock(endpoint->mu);
    abandoned += endpoint->queue.size();
    endpoint->queue.clear();
    if (endpoint->busy) ++cut_short;
    endpoint->busy = false;
    endpoint->idle = false;
  }
  if (abandoned > 0 || cut_short > 0) {
    spdlog::warn("webhooks stopped: {} queued event{} abandoned, {} deliver{} cut short", abandoned,
                 abandoned == 1 ? "" : "s", cut_short, cut_short == 1 ? "y" : "ies");
  } else if (!endpoints_.empty()) {
    spdlog::info("webhooks stopped");
  }
}

}  // namespace muster
