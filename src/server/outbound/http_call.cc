// Run and the exchange's own coroutine (Work) share the HttpCall on one
// executor. Run starts Work and waits on `wake_`, a timer set to the
// deadline that Work's end (or Close) cancels; whichever comes first decides
// what Run returns. After that Work may still be suspended in a step: Shut
// closed its socket, so the step fails soon (a name lookup ends when the
// resolver answers), and `over_` keeps Work from starting another.
#include "server/outbound/http_call.h"

#include <exception>
#include <limits>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "core/duration.h"
#include "core/strings.h"

namespace muster::outbound {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

struct HttpCall::Connection {
  explicit Connection(const asio::any_io_executor& executor) : resolver(executor), socket(executor) {}

  tcp::socket& Socket() { return tls ? tls->next_layer() : socket; }

  tcp::resolver resolver;
  tcp::socket socket;  // until the TLS stream takes it
  std::unique_ptr<TlsClient::Stream> tls;
};

namespace {

// What Work returns once Run returned already: nobody reads it.
absl::Status Over() { return absl::CancelledError("the exchange ended"); }

}  // namespace

Request NewRequest(const HttpUrl& url, std::string_view method, std::string_view user_agent) {
  Request request;
  if (http::verb verb = http::string_to_verb(method); verb != http::verb::unknown) {
    request.method(verb);
  } else {
    request.method_string(method);
  }
  request.target(url.target);
  request.version(11);
  request.set(http::field::host, url.authority);
  request.set(http::field::user_agent, user_agent);
  return request;
}

std::optional<std::string> HttpAnswer::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (beast::iequals(key, name)) return value;
  }
  return std::nullopt;
}

std::string HttpAnswer::StatusLine() const { return StrCat("HTTP ", status, " ", reason); }

std::shared_ptr<HttpCall> HttpCall::Make(asio::any_io_executor executor, HttpUrl url,
                                         std::shared_ptr<const TlsClient> tls) {
  return std::shared_ptr<HttpCall>(new HttpCall(std::move(executor), std::move(url), std::move(tls)));
}

HttpCall::HttpCall(asio::any_io_executor executor, HttpUrl url, std::shared_ptr<const TlsClient> tls)
    : executor_(std::move(executor)),
      url_(std::move(url)),
      tls_(std::move(tls)),
      connection_(std::make_unique<Connection>(executor_)),
      wake_(executor_) {}

HttpCall::~HttpCall() = default;

awaitable<absl::StatusOr<HttpAnswer>> HttpCall::Run(Request request, ExchangeOptions options) {
  if (closed_) co_return absl::CancelledError("cancelled");
  if (url_.tls && tls_ == nullptr) {
    co_return absl::FailedPreconditionError(StrCat("no TLS client for ", url_.Origin()));
  }
  const std::chrono::milliseconds timeout = options.timeout;
  wake_.expires_after(timeout);
  std::shared_ptr<HttpCall> self = shared_from_this();
  asio::co_spawn(executor_, Work(self, std::move(request), std::move(options)),
                 [self](std::exception_ptr e, absl::StatusOr<HttpAnswer> result) {
                   if (e) {
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& ex) {
                       result = absl::InternalError(StrCat("internal error: ", ex.what()));
                     }
                   }
                   self->result_ = std::move(result);
                   self->wake_.cancel();
                 });
  co_await wake_.async_wait(use_tuple);
  over_ = true;
  // Close wins over a result that its closing brought about.
  if (closed_) co_return absl::CancelledError(StrCat("cancelled (", step_, ")"));
  if (result_) co_return std::move(*result_);
  Shut();
  if (head_) {
    // The status is known; the body stops where the deadline found it. A
    // copy: the read in flight may still own the buffer.
    HttpAnswer answer = *head_;
    answer.body.resize(body_got_);
    answer.body_cut_by_deadline = true;
    co_return answer;
  }
  co_return absl::DeadlineExceededError(
      StrCat("timed out after ", FormatDuration(timeout), " (", step_, ")"));
}

void HttpCall::Close() {
  closed_ = true;
  over_ = true;
  Shut();
  wake_.cancel();
}

void HttpCall::Shut() {
  connection_->resolver.cancel();
  error_code ignored;
  connection_->Socket().close(ignored);
}

awaitable<absl::StatusOr<HttpAnswer>> HttpCall::Work(std::shared_ptr<HttpCall> self,
                                                     Request request, ExchangeOptions options) {
  co_return co_await self->Connect(request, options);
}

awaitable<absl::StatusOr<HttpAnswer>> HttpCall::Connect(Request& request,
                                                        const ExchangeOptions& options) {
  Connection& c = *connection_;
  const std::string port = StrCat(url_.port);
  tcp::resolver::results_type endpoints;
  error_code not_ip;
  const asio::ip::address address = asio::ip::make_address(url_.host, not_ip);
  if (!not_ip) {
    // An IP address needs no lookup (and no turn on Asio's one resolver thread).
    endpoints = tcp::resolver::results_type::create(tcp::endpoint(address, url_.port), url_.host,
                                                    port);
  } else {
    step_ = StrCat("resolving ", url_.host);
    auto [resolve_error, found] = co_await c.resolver.async_resolve(url_.host, port, use_tuple);
    if (over_) co_return Over();
    if (resolve_error) {
      co_return absl::UnavailableError(StrCat("resolve ", url_.host, ": ", resolve_error.message()));
    }
    endpoints = std::move(found);
  }

  const std::string endpoint = url_.Endpoint();
  step_ = StrCat("connecting to ", endpoint);
  auto [connect_error, connected] = co_await asio::async_connect(c.socket, endpoints, use_tuple);
  if (over_) co_return Over();
  if (connect_error) {
    co_return absl::UnavailableError(StrCat("connect to ", endpoint, ": ", connect_error.message()));
  }
  error_code ignored;
  c.socket.set_option(tcp::no_delay(true), ignored);
  if (!url_.tls) co_return co_await Exchange(c.socket, request, options);

  step_ = StrCat("TLS handshake with ", endpoint);
  c.tls = tls_->Wrap(std::move(c.socket), url_.host);
  auto [handshake_error] = co_await c.tls->async_handshake(ssl::stream_base::client, use_tuple);
  if (over_) co_return Over();
  if (handshake_error) {
    co_return absl::UnavailableError(StrCat("TLS handshake with ", endpoint, ": ",
                                            TlsClient::HandshakeError(handshake_error, *c.tls)));
  }
  co_return co_await Exchange(*c.tls, request, options);
}

template <typename Stream>
awaitable<absl::StatusOr<HttpAnswer>> HttpCall::Exchange(Stream& stream, Request& request,
                                                         const ExchangeOptions& options) {
  const std::string endpoint = url_.Endpoint();
  // One request per connection: the server may close once it answered.
  request.set(http::field::connection, "close");
  request.prepare_payload();
  step_ = StrCat("sending the request to ", endpoint);
  auto [write_error, written] = co_await http::async_write(stream, request, use_tuple);
  if (over_) co_return Over();
  if (write_error) {
    co_return absl::UnavailableError(StrCat("HTTP request to ", endpoint, ": ", write_error.message()));
  }

  step_ = StrCat("waiting for the answer of ", endpoint);
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  // The body is read in part at most, so its declared size does not matter.
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  // An answer to HEAD announces a body it does not have.
  if (request.method() == http::verb::head) parser.skip(true);
  auto [read_error, header_bytes] = co_await http::async_read_header(stream, buffer, parser, use_tuple);
  if (over_) co_return Over();
  if (read_error) {
    co_return absl::UnavailableError(StrCat("HTTP answer from ", endpoint, ": ", read_error.message()));
  }

  const auto& response = parser.get();
  HttpAnswer& head = head_.emplace();
  head.status = response.result_int();
  head.reason = std::string(response.reason());
  if (head.reason.empty()) head.reason = std::string(http::obsolete_reason(response.result()));
  for (const auto& field : response) {
    head.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }

  // The start of the body. The status is known now: a body that breaks off
  // ends the reading, not the exchange.
  step_ = StrCat("reading the body from ", endpoint);
  const size_t limit = options.body_bytes(head.status);
  head.body.assign(limit, '\0');
  while (!parser.is_done() && body_got_ < limit) {
    parser.get().body().data = head.body.data() + body_got_;
    parser.get().body().size = limit - body_got_;
    // Piece by piece, so that what came is counted when the deadline passes.
    auto [body_error, n] = co_await http::async_read_some(stream, buffer, parser, use_tuple);
    if (over_) co_return Over();
    body_got_ = limit - parser.get().body().size;
    if (body_error && body_error != http::error::need_buffer) break;
  }
  head.body.resize(body_got_);
  co_return head;
}

}  // namespace muster::outbound
