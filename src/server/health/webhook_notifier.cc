// The notifier runs one sender coroutine per URL on a single thread with an
// io_context of its own. A sender takes the oldest event off its queue, tries
// it until it is delivered, fails for good or runs out of attempts, then
// takes the next. Notify only touches the queues (under each URL's mutex) and
// wakes an idle sender with a post; it never waits for the network.
//
// Stop stops the io_context, joins the thread and then destroys the
// io_context: that destroys the suspended senders, and with them the socket
// of the attempt in flight (closing it) and any backoff timer.
#include "server/health/webhook_notifier.h"

#include <pthread.h>

#include <algorithm>
#include <cctype>
#include <deque>
#include <exception>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <string_view>
#include <utility>

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include "core/duration.h"
#include "core/strings.h"
#include "core/validation.h"
#include "server/async_util.h"

namespace muster {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
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
  // For logs: "HTTP 503 Service Unavailable: ...", "connecting to
  // 127.0.0.1:9: Connection refused".
  std::string detail;
  // From a Retry-After header (seconds) on a 429 or 503 answer.
  milliseconds retry_after{0};
};

// One attempt's connection. Shared by the attempt's coroutine and its
// watchdog; touched only on the notifier's thread.
struct AttemptState {
  explicit AttemptState(const asio::any_io_executor& executor)
      : resolver(executor), socket(executor), watchdog(executor) {}

  tcp::socket& Socket() { return tls ? tls->next_layer() : socket; }

  // Ends whichever step is waiting (it fails with an error).
  void Close() {
    resolver.cancel();
    error_code ignored;
    Socket().close(ignored);
  }

  tcp::resolver resolver;
  tcp::socket socket;  // until the TLS stream takes it
  std::optional<ssl::stream<tcp::socket>> tls;
  asio::steady_timer watchdog;
  std::string step;  // what the attempt waits for: "connecting to 127.0.0.1:8080"
  bool timed_out = false;
  bool done = false;
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
  bool tls = false;
  std::string host;  // name or IP address, without IPv6 brackets
  uint16_t port = 0;
  std::optional<asio::ip::address> ip;  // when `host` is an IP address: no lookup
  std::string authority;  // host[:port] as written: the Host header
  std::string target;     // origin-form request target: "/path?query"
  std::string endpoint;   // host:port for messages: "[::1]:8443"
  // For logs: the URL without its path, which may hold a secret token:
  // "webhook 2 (https://hooks.example.com)".
  std::string name;
};

namespace {

absl::StatusOr<std::string_view> SchemeOf(std::string_view url) {
  const size_t end = url.find("://");
  if (end == std::string_view::npos) return absl::InvalidArgumentError("no scheme");
  return url.substr(0, end);
}

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

// The notifier's state for one URL.
struct WebhookNotifier::Endpoint {
  Endpoint(Url u, const WebhookOptions& o, ssl::context* tls, const asio::any_io_executor& executor,
           uint32_t seed)
      : url(std::move(u)),
        attempts(o.attempts),
        timeout(o.timeout),
        initial_backoff(o.initial_backoff),
        max_backoff(o.max_backoff),
        tls_skip_verify(o.tls_skip_verify),
        tls_context(tls),
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
  awaitable<AttemptResult> Connect(AttemptState& st, const std::string& body);
  template <typename Stream>
  awaitable<AttemptResult> Exchange(AttemptState& st, Stream& stream, const std::string& body);
  void SetUpTls(AttemptState& st);
  AttemptResult IoError(const AttemptState& st, const error_code& ec) const;
  milliseconds Backoff(uint32_t retry, milliseconds retry_after);

  // Constant after construction.
  const Url url;
  const uint32_t attempts;
  const milliseconds timeout;
  const milliseconds initial_backoff;
  const milliseconds max_backoff;
  const bool tls_skip_verify;
  ssl::context* const tls_context;  // the notifier's, for https; null for http

  // The sender's, on the notifier's thread only (Stop resets `wakeup` once
  // that thread ended, before the io_context its timer uses goes away).
  std::optional<Wakeup> wakeup;
  std::mt19937 random;  // backoff jitter
  // Wakes the sender. Called by Notify under the notifier's mu_ while
  // !stopped_ (so the io_context is alive); reset by Stop.
  std::function<void()> wake;

  mutable std::mutex mu;
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
      std::lock_guard lock(mu);
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
    std::lock_guard lock(mu);
    if (failed) ++stats.failed;
    busy = false;
  }
}

awaitable<void> WebhookNotifier::Endpoint::Deliver(const std::string& body) {
  asio::steady_timer pause(co_await asio::this_coro::executor);
  for (uint32_t attempt = 1;; ++attempt) {
    if (attempt > 1) {
      std::lock_guard lock(mu);
      ++stats.retries;
    }
    const AttemptResult result = co_await Attempt(body);
    if (result.outcome == Outcome::kDelivered) {
      std::lock_guard lock(mu);
      ++stats.delivered;
      co_return;
    }
    if (result.outcome == Outcome::kFailed) {
      spdlog::warn("{}: event not delivered, not retried: {}", url.name, result.detail);
      std::lock_guard lock(mu);
      ++stats.failed;
      co_return;
    }
    if (attempt >= attempts) {
      spdlog::warn("{}: event not delivered after {} attempt{}: {}", url.name, attempt,
                   attempt == 1 ? "" : "s", result.detail);
      std::lock_guard lock(mu);
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

AttemptResult WebhookNotifier::Endpoint::IoError(const AttemptState& st,
                                                 const error_code& ec) const {
  if (st.timed_out) {
    return {Outcome::kRetry, StrCat("timed out after ", FormatDuration(timeout), " (", st.step, ")")};
  }
  return {Outcome::kRetry, StrCat(st.step, ": ", ec.message())};
}

awaitable<AttemptResult> WebhookNotifier::Endpoint::Attempt(const std::string& body) {
  auto st = std::make_shared<AttemptState>(co_await asio::this_coro::executor);
  st->watchdog.expires_after(timeout);
  st->watchdog.async_wait([st](error_code ec) {
    if (ec || st->done) return;
    st->timed_out = true;
    st->Close();
  });
  AttemptResult result = co_await Connect(*st, body);
  st->done = true;
  st->watchdog.cancel();
  st->Close();
  co_return result;
}

awaitable<AttemptResult> WebhookNotifier::Endpoint::Connect(AttemptState& st,
                                                            const std::string& body) {
  tcp::resolver::results_type endpoints;
  if (url.ip) {
    endpoints = tcp::resolver::results_type::create(tcp::endpoint(*url.ip, url.port), url.host,
                                                    StrCat(url.port));
  } else {
    st.step = StrCat("resolving ", url.host);
    auto [resolve_error, found] =
        co_await st.resolver.async_resolve(url.host, StrCat(url.port), use_tuple);
    if (resolve_error || st.timed_out) co_return IoError(st, resolve_error);
    endpoints = std::move(found);
  }

  st.step = StrCat("connecting to ", url.endpoint);
  auto [connect_error, connected] = co_await asio::async_connect(st.socket, endpoints, use_tuple);
  if (connect_error || st.timed_out) co_return IoError(st, connect_error);
  error_code ignored;
  st.socket.set_option(tcp::no_delay(true), ignored);
  if (!url.tls) co_return co_await Exchange(st, st.socket, body);

  st.step = StrCat("TLS handshake with ", url.endpoint);
  SetUpTls(st);
  auto [handshake_error] = co_await st.tls->async_handshake(ssl::stream_base::client, use_tuple);
  if (handshake_error || st.timed_out) {
    AttemptResult result = IoError(st, handshake_error);
    // OpenSSL's reason for rejecting the certificate, if that was the cause.
    const long verify = SSL_get_verify_result(st.tls->native_handle());
    if (!st.timed_out && verify != X509_V_OK) {
      StrAppend(&result.detail, " (", X509_verify_cert_error_string(verify), ")");
    }
    co_return result;
  }
  co_return co_await Exchange(st, *st.tls, body);
}

void WebhookNotifier::Endpoint::SetUpTls(AttemptState& st) {
  st.tls.emplace(std::move(st.socket), *tls_context);
  SSL* ssl = st.tls->native_handle();
  // SNI is for names only (RFC 6066 rules out IP addresses).
  if (!url.ip) SSL_set_tlsext_host_name(ssl, url.host.c_str());
  if (tls_skip_verify) {
    st.tls->set_verify_mode(ssl::verify_none);
    return;
  }
  st.tls->set_verify_mode(ssl::verify_peer);
  // OpenSSL checks the name (or IP address) in the handshake; a mismatch is a
  // verify failure like any other.
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  if (url.ip) {
    X509_VERIFY_PARAM_set1_ip_asc(param, url.host.c_str());
  } else {
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    X509_VERIFY_PARAM_set1_host(param, url.host.c_str(), url.host.size());
  }
}

template <typename Stream>
awaitable<AttemptResult> WebhookNotifier::Endpoint::Exchange(AttemptState& st, Stream& stream,
                                                             const std::string& body) {
  http::request<http::string_body> request(http::verb::post, url.target, 11);
  request.set(http::field::host, url.authority);
  request.set(http::field::user_agent, kUserAgent);
  request.set(http::field::content_type, "application/json");
  // One request per connection.
  request.set(http::field::connection, "close");
  request.body() = body;
  request.prepare_payload();

  st.step = StrCat("sending the event to ", url.endpoint);
  auto [write_error, written] = co_await http::async_write(stream, request, use_tuple);
  if (write_error || st.timed_out) co_return IoError(st, write_error);

  st.step = StrCat("waiting for the answer of ", url.endpoint);
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  // The body is read in part (for failures only), so its size does not matter.
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  auto [read_error, header_bytes] =
      co_await http::async_read_header(stream, buffer, parser, use_tuple);
  if (read_error || st.timed_out) co_return IoError(st, read_error);

  const auto& response = parser.get();
  const unsigned code = response.result_int();
  if (code >= 200 && code < 300) co_return AttemptResult{Outcome::kDelivered, "", milliseconds(0)};

  AttemptResult result;
  std::string_view reason = response.reason();
  if (reason.empty()) reason = http::obsolete_reason(response.result());
  result.detail = StrCat("HTTP ", code, " ", reason);
  if (code >= 300 && code < 400) result.detail += " (redirects are not followed)";
  result.outcome = IsRetryableStatus(code) ? Outcome::kRetry : Outcome::kFailed;
  if (code == 429 || code == 503) {
    if (auto it = response.find(http::field::retry_after); it != response.end()) {
      result.retry_after = ParseRetryAfter(it->value());
    }
  }

  // The start of the body, for the log line; the status decided already, so
  // a body that breaks off (or the deadline) changes nothing.
  std::string text(kLoggedBodyBytes + 1, '\0');
  size_t got = 0;
  while (!parser.is_done() && got < text.size() && !st.timed_out) {
    parser.get().body().data = text.data() + got;
    parser.get().body().size = text.size() - got;
    auto [body_error, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
    got = text.size() - parser.get().body().size;
    if (body_error && body_error != http::error::need_buffer) break;
  }
  text.resize(got);
  if (!text.empty()) StrAppend(&result.detail, ": ", LoggableBody(text));
  co_return result;
}

// The io_context and what lives with it.
struct WebhookNotifier::Io {
  // Declared before the io_context, so it outlives the TLS streams that the
  // io_context's destruction destroys.
  std::optional<ssl::context> tls;
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
    auto scheme = SchemeOf(text);
    if (!scheme.ok()) return BadUrl(text, "not an http:// or https:// URL");
    Url url;
    if (EqualsIgnoringCase(*scheme, "https")) {
      url.tls = true;
    } else if (!EqualsIgnoringCase(*scheme, "http")) {
      return BadUrl(text, "not an http:// or https:// URL");
    }
    std::string_view rest = std::string_view(text).substr(scheme->size() + 3);
    const size_t authority_end = rest.find_first_of("/?#");
    url.authority = std::string(rest.substr(0, authority_end));
    std::string_view path =
        authority_end == std::string_view::npos ? "" : rest.substr(authority_end);
    path = path.substr(0, path.find('#'));  // a fragment is never sent
    url.target = path.starts_with('/') ? std::string(path) : StrCat("/", path);
    for (char c : url.target) {
      if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
        return BadUrl(text, "spaces or control characters in the path");
      }
    }
    if (url.authority.empty()) return BadUrl(text, "no host");
    if (url.authority.find('@') != std::string::npos) {
      return BadUrl(text, "user information in the URL is not supported");
    }
    // "host", "host:port", "[v6]" or "[v6]:port".
    const bool has_port =
        !url.authority.ends_with(']') && url.authority.find(':') != std::string::npos;
    auto host_port = SplitHostPort(
        has_port ? url.authority : StrCat(url.authority, url.tls ? ":443" : ":80"));
    if (!host_port.ok()) return BadUrl(text, MessageOf(host_port.status()));
    if (host_port->second == 0) return BadUrl(text, "port 0");
    url.host = std::move(host_port->first);
    url.port = host_port->second;
    error_code not_ip;
    const asio::ip::address ip = asio::ip::make_address(url.host, not_ip);
    if (!not_ip) url.ip = ip;
    const bool v6 = url.host.find(':') != std::string::npos;
    url.endpoint = StrCat(v6 ? "[" : "", url.host, v6 ? "]" : "", ":", url.port);
    url.name = StrCat("webhook ", i + 1, " (", url.tls ? "https" : "http", "://", url.authority, ")");
    for (size_t j = 0; j < i; ++j) {
      if (options.urls[j] == text) return BadUrl(text, "listed twice");
    }
    any_tls = any_tls || url.tls;
    urls.push_back(std::move(url));
  }

  auto io = std::make_unique<Io>();
  if (any_tls) {
    io->tls.emplace(ssl::context::tls_client);
    io->tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                         ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                         ssl::context::no_tlsv1_1);
    if (!options.tls_skip_verify) {
      error_code ec;
      io->tls->set_default_verify_paths(ec);
      if (ec) {
        return absl::FailedPreconditionError(
            StrCat("webhooks: cannot load the system CA certificates: ", ec.message()));
      }
    }
  }

  std::random_device seeds;
  std::vector<std::unique_ptr<Endpoint>> endpoints;
  for (Url& url : urls) {
    endpoints.push_back(std::make_unique<Endpoint>(std::move(url), options,
                                                   io->tls ? &*io->tls : nullptr,
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
    std::lock_guard lock(mu_);
    if (stopped_) return;
    for (const auto& endpoint : endpoints_) {
      bool wake = false;
      {
        std::lock_guard endpoint_lock(endpoint->mu);
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
    std::lock_guard lock(endpoint->mu);
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
    std::lock_guard lock(mu_);
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
    std::lock_guard lock(endpoint->mu);
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
