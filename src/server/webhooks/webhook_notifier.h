// Webhooks: musterd POSTs a JSON event to every configured URL whenever an
// instance's health changes.
//
// A slow webhook never slows the registry. Notify() only appends the event to
// a bounded queue per URL and returns; the HTTP work runs on a thread of the
// notifier's own (with its own io_context, never musterd's I/O threads).
// Each URL has its own queue and sender, so a URL that is down or slow only
// delays its own events.
//
// Per URL, events go out in order, one at a time, one connection per attempt
// (`Connection: close`). An attempt is: resolve (asynchronously), connect,
// TLS handshake for https, write the request, read the status line and
// headers; all of it within `timeout`. The answer decides:
//   2xx                          delivered
//   5xx, 408, 429, no answer     retried after a backoff, up to `attempts` tries
//   (connect error, timeout...)  in all; then the event is counted failed
//   any other status (3xx, 4xx)  failed at once, not retried (redirects are
//                                not followed)
// Delivery is at least once: an attempt that timed out may still have reached
// the receiver, which then sees the event again.
//
// Example:
//   WebhookOptions options;
//   options.urls = {"https://hooks.example.com/muster"};
//   auto notifier = WebhookNotifier::Start(std::move(options));
//   if (!notifier.ok()) return notifier.status();
//   (*notifier)->Notify(R"({"type":"health","instance":"a-1","health":"critical"})");
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "core/mutex.h"

namespace muster {

struct WebhookOptions {
  // http:// or https://, a host name or IP address (IPv6 in brackets), an
  // optional port and a path (with an optional query). No user information.
  std::vector<std::string> urls;
  // Events waiting per URL, not counting the one being delivered (or waiting
  // for its next try). When the queue is full, Notify drops the oldest
  // waiting event (counted in Stats::dropped; a warning at most once per 10 s
  // per URL).
  size_t queue_limit = 1024;
  // Tries per event (1 = no retry).
  uint32_t attempts = 5;
  // Per attempt: resolve + connect + TLS handshake + send + the answer's head.
  std::chrono::milliseconds timeout{5000};
  // Before retry n (n = 1, 2, ...): initial_backoff * 2^(n-1), capped at
  // max_backoff, then a random value between half of that and all of it. A
  // Retry-After (seconds) on a 429 or 503 answer raises the wait, up to
  // max_backoff.
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{30000};
  // https: do not check the receiver's certificate (nor its name).
  bool tls_skip_verify = false;
};

// Thread-safe: every method may be called from any thread.
class WebhookNotifier {
 public:
  // Validates the options (InvalidArgument naming the bad URL or option;
  // FailedPrecondition when the system CA certificates cannot be loaded for
  // an https URL) and starts the notifier's thread. No URLs is valid: Notify
  // then does nothing.
  static absl::StatusOr<std::unique_ptr<WebhookNotifier>> Start(WebhookOptions options);

  WebhookNotifier(const WebhookNotifier&) = delete;
  WebhookNotifier& operator=(const WebhookNotifier&) = delete;

  // Stop().
  ~WebhookNotifier();

  // Queues `json_body` for every URL. Never waits for I/O: it takes a short
  // mutex per URL and wakes that URL's sender. Ignored after Stop.
  void Notify(std::string json_body) ABSL_LOCKS_EXCLUDED(mu_);

  struct Stats {
    uint64_t delivered = 0;  // answered 2xx
    uint64_t failed = 0;     // a final failure: attempts used up, or a status not retried
    uint64_t dropped = 0;    // pushed out of a full queue, never tried
    uint64_t retries = 0;    // tries after the first, over all events
    size_t queued = 0;       // waiting now, not counting the events in delivery
  };
  // Summed over the URLs.
  Stats stats() const;

  // Abandons what is queued (logged with the count), ends the attempt in
  // flight (its connection is closed) and joins the thread. Idempotent.
  // A name lookup in progress is not interruptible and may hold Stop until
  // the system resolver answers.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Url;
  struct Endpoint;
  struct Io;

  WebhookNotifier(WebhookOptions options, std::vector<std::unique_ptr<Endpoint>> endpoints,
                  std::unique_ptr<Io> io);

  // Constant after construction.
  const WebhookOptions options_;
  const std::vector<std::unique_ptr<Endpoint>> endpoints_;  // one per URL, in order

  // Lock order: mu_ before any Endpoint::mu.
  mutable Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  // The io_context and what lives on it; reset by Stop once the thread ended.
  // While !stopped_ it is alive, so Notify may post to it under mu_.
  std::unique_ptr<Io> io_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;  // started by Start, joined by Stop
};

}  // namespace muster
