// One outbound HTTP/1.1 exchange, as musterd's HTTP checks and webhooks make
// them: resolve the URL's host (an IP address needs no lookup), connect, TLS
// handshake for https (TlsClient), write one request, read the answer's
// status and headers and at most a bounded start of its body. One request per
// connection (`Connection: close`); redirects are not followed (the caller
// sees the 3xx).
//
// The whole exchange shares one deadline. When it passes, Run returns at
// once with DeadlineExceeded ("timed out after 5s (connecting to
// 127.0.0.1:80)") and the connection is closed, which ends whichever step
// was waiting; a name lookup, which Asio cannot interrupt, ends on its own
// later, unseen. What counts as success (which statuses, retries) is the
// caller's.
//
// Example, in a coroutine:
//   auto url = outbound::ParseHttpUrl("http://127.0.0.1:8080/health");
//   auto call = outbound::HttpCall::Make(co_await asio::this_coro::executor, *url, nullptr);
//   auto answer = co_await call->Run(outbound::NewRequest(*url, "GET", "me"), options);
//   if (answer.ok()) use(answer->status, answer->body);
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "absl/status/statusor.h"
#include "server/async_util.h"
#include "server/outbound/http_url.h"
#include "server/outbound/tls_client.h"

namespace muster::outbound {

using Request = boost::beast::http::request<boost::beast::http::string_body>;

// A request for `url`'s target with the Host (the URL's authority as written)
// and User-Agent headers. A method Beast does not know is sent as written.
// The caller adds its own headers and body; Run adds `Connection: close` and
// the body's length.
Request NewRequest(const HttpUrl& url, std::string_view method, std::string_view user_agent);

struct HttpAnswer {
  unsigned status = 0;
  std::string reason;  // the server's, or the standard one when it sent none
  std::vector<std::pair<std::string, std::string>> headers;
  // The start of the body: at most ExchangeOptions::body_bytes(status) bytes.
  std::string body;
  // The deadline passed while the body was read: `body` is what came before.
  bool body_cut_by_deadline = false;

  // The first header with this name (case-insensitive), or nullopt.
  std::optional<std::string> Header(std::string_view name) const;
  // "HTTP 503 Service Unavailable".
  std::string StatusLine() const;
};

struct ExchangeOptions {
  // For the whole exchange, from the start of Run.
  std::chrono::milliseconds timeout{5000};
  // How much of the body to read, once the status is known (0: none). The
  // rest is never read; the connection is closed.
  std::function<size_t(unsigned status)> body_bytes = [](unsigned) { return size_t{0}; };
};

// One exchange; made by the caller, which keeps it to Close it. Everything
// about it, Run and Close included, happens on the executor it was made with
// (a strand, or an io_context run by one thread).
class HttpCall : public std::enable_shared_from_this<HttpCall> {
 public:
  // `tls` is needed for an https URL (and ignored for http).
  static std::shared_ptr<HttpCall> Make(asio::any_io_executor executor, HttpUrl url,
                                        std::shared_ptr<const TlsClient> tls);

  // The exchange; at most once per HttpCall. The answer, whatever its status,
  // or an error saying which step failed and why: Unavailable ("connect to
  // 127.0.0.1:9: Connection refused", "TLS handshake with [::1]:8443:
  // certificate verify failed (self-signed certificate)"), DeadlineExceeded,
  // Cancelled (after Close).
  awaitable<absl::StatusOr<HttpAnswer>> Run(Request request, ExchangeOptions options);

  // Ends the exchange now: Run returns Cancelled, the connection is closed.
  void Close();

  // What the exchange is waiting for now: "connecting to 127.0.0.1:80".
  const std::string& step() const { return step_; }

  HttpCall(const HttpCall&) = delete;
  HttpCall& operator=(const HttpCall&) = delete;
  ~HttpCall();

 private:
  struct Connection;
  HttpCall(asio::any_io_executor executor, HttpUrl url, std::shared_ptr<const TlsClient> tls);

  static awaitable<absl::StatusOr<HttpAnswer>> Work(std::shared_ptr<HttpCall> self,
                                                    Request request, ExchangeOptions options);
  awaitable<absl::StatusOr<HttpAnswer>> Connect(Request& request, const ExchangeOptions& options);
  template <typename Stream>
  awaitable<absl::StatusOr<HttpAnswer>> Exchange(Stream& stream, Request& request,
                                                 const ExchangeOptions& options);
  // Closes the connection (or cancels the lookup) so the step in progress fails.
  void Shut();

  const asio::any_io_executor executor_;
  const HttpUrl url_;
  const std::shared_ptr<const TlsClient> tls_;  // before the connection: outlives its stream
  std::unique_ptr<Connection> connection_;
  // Expires at the deadline; cancelled when Work ends or on Close.
  asio::steady_timer wake_;
  std::string step_;
  // Run returned (deadline, Close): Work must not start another step.
  bool over_ = false;
  bool closed_ = false;
  // Work's result, once it ended.
  std::optional<absl::StatusOr<HttpAnswer>> result_;
  // Filled by Work as the answer comes: the head, then the body's start.
  std::optional<HttpAnswer> head_;
  size_t body_got_ = 0;  // of head_->body, read in full so far
};

}  // namespace muster::outbound
