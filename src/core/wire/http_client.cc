#include "core/wire/http_client.h"

#include "core/validation.h"
#include "core/wire/errors.h"

#include <algorithm>
#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <charconv>

#include "core/duration.h"
#include "core/strings.h"

namespace muster::wire {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

// Largest response body HttpClient::Do accepts, and the most bytes an event
// stream may buffer without completing a line.
constexpr uint64_t kMaxBodyBytes = 64ull << 20;
// Largest response header accepted (the server's own limit is 16 KiB).
constexpr uint32_t kMaxHeaderBytes = 64 << 10;
// Bytes pulled from an event stream per read.
constexpr size_t kStreamChunkBytes = 16 << 10;
// Most of an error body an event stream reads for its message.
constexpr size_t kMaxErrorBodyBytes = 12800;
constexpr std::string_view kUserAgent = "muster-client/0.1";

std::chrono::milliseconds Remaining(Clock::time_point deadline) {
  return std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
}

// Runs `ioc` until the completion handler of the operation just started sets
// `done`. Every operation started through here is bounded by a timer of its
// own (tcp_stream::expires_after or a steady_timer that cancels it), so this
// returns by the caller's deadline. Handlers left ready afterwards (the
// cancelled timers) are drained so they cannot fire into the next operation.
void RunUntilDone(asio::io_context& ioc, const bool& done) {
  ioc.restart();
  while (!done && ioc.run_one() > 0) {
  }
  ioc.poll();
}

bool IsTimeout(const error_code& ec) { return ec == beast::error::timeout; }

// The status for a failed socket operation: DeadlineExceeded for a timeout,
// Unavailable for anything else (refused, reset, closed, malformed answer).
absl::Status TransportError(std::string_view what, std::string_view address, const error_code& ec,
                            std::chrono::milliseconds timeout) {
  if (IsTimeout(ec)) {
    return absl::DeadlineExceededError(
        muster::StrCat(what, " ", address, ": timed out after ", FormatDuration(timeout)));
  }
  return absl::UnavailableError(muster::StrCat(what, " ", address, ": ", ec.message()));
}

template <class Fields>
void CopyHeaders(const Fields& fields, HttpResponse& out) {
  for (const auto& field : fields) {
    out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
}

// One TCP connection to one host:port on an io_context of its own, with the
// connect/write/read steps both HttpClient and SseStream need.
class Connection {
 public:
  explicit Connection(std::string address) : address_(std::move(address)) {
    auto split = muster::SplitHostPort(address_, AddressUse::kDial);
    if (split.ok()) {
      host_ = split->first;
      port_ = split->second;
    } else {
      address_status_ = split.status();
    }
  }

  const std::string& address() const { return address_; }
  bool is_open() const { return stream_.socket().is_open(); }
  beast::tcp_stream& stream() { return stream_; }
  beast::flat_buffer& buffer() { return buffer_; }
  asio::io_context& ioc() { return ioc_; }

  // Closes the socket and forgets buffered bytes; the next Connect starts afresh.
  void Close() {
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
    buffer_.clear();
  }

  // Resolves the host and connects, all by `deadline`.
  absl::Status Connect(Clock::time_point deadline, std::chrono::milliseconds timeout) {
    if (!address_status_.ok()) return address_status_;
    Close();
    auto endpoints = Resolve(deadline, timeout);
    if (!endpoints.ok()) return endpoints.status();
    auto remaining = Remaining(deadline);
    if (remaining.count() <= 0) {
      return TransportError("cannot connect to", address_, beast::error::timeout, timeout);
    }
    stream_.expires_after(remaining);
    error_code result;
    bool done = false;
    stream_.async_connect(*endpoints, [&](const error_code& ec, const tcp::endpoint&) {
      result = ec;
      done = true;
    });
    RunUntilDone(ioc_, done);
    if (result) {
      Close();
      return TransportError("cannot connect to", address_, result, timeout);
    }
    error_code ignored;
    stream_.socket().set_option(tcp::no_delay(true), ignored);
    return absl::OkStatus();
  }

  // Writes a whole request by `deadline`.
  template <class Body>
  error_code Write(http::request<Body>& request, Clock::time_point deadline) {
    stream_.expires_after(std::max(Remaining(deadline), std::chrono::milliseconds(0)));
    error_code result;
    bool done = false;
    http::async_write(stream_, request, [&](const error_code& ec, size_t) {
      result = ec;
      done = true;
    });
    RunUntilDone(ioc_, done);
    return result;
  }

  // Reads into `parser` until it is done (`header_only`: until its header is),
  // by `deadline`.
  template <class Parser>
  error_code Read(Parser& parser, bool header_only, Clock::time_point deadline) {
    stream_.expires_after(std::max(Remaining(deadline), std::chrono::milliseconds(0)));
    error_code result;
    bool done = false;
    auto handler = [&](const error_code& ec, size_t) {
      result = ec;
      done = true;
    };
    if (header_only) {
      http::async_read_header(stream_, buffer_, parser, handler);
    } else {
      http::async_read(stream_, buffer_, parser, handler);
    }
    RunUntilDone(ioc_, done);
    return result;
  }

 private:
  // Endpoints for host_: an IP literal directly, a host name through the
  // resolver. getaddrinfo cannot be interrupted, so a slow lookup is abandoned
  // at the deadline; its late completion only touches the shared `State`.
  absl::StatusOr<std::vector<tcp::endpoint>> Resolve(Clock::time_point deadline,
                                                     std::chrono::milliseconds timeout) {
    error_code ec;
    auto ip = asio::ip::make_address(host_, ec);
    if (!ec) return std::vector<tcp::endpoint>{tcp::endpoint(ip, port_)};

    struct State {
      bool done = false;
      error_code ec;
      std::vector<tcp::endpoint> endpoints;
    };
    auto state = std::make_shared<State>();
    tcp::resolver resolver(ioc_);
    resolver.async_resolve(host_, std::to_string(port_),
                           [state](const error_code& e, const tcp::resolver::results_type& r) {
                             state->ec = e;
                             for (const auto& entry : r)
                               state->endpoints.push_back(entry.endpoint());
                             state->done = true;
                           });
    ioc_.restart();
    while (!state->done && ioc_.run_one_until(deadline) > 0) {
    }
    if (!state->done) {
      resolver.cancel();
      return TransportError("cannot resolve", host_, beast::error::timeout, timeout);
    }
    if (state->ec) {
      return absl::UnavailableError(
          muster::StrCat("cannot connect to ", address_, ": ", state->ec.message()));
    }
    return std::move(state->endpoints);
  }

  std::string address_;
  absl::Status address_status_;
  std::string host_;
  uint16_t port_ = 0;
  // Declared first so that it is destroyed last, after the I/O objects using it.
  asio::io_context ioc_;
  beast::tcp_stream stream_{ioc_};
  beast::flat_buffer buffer_;
};

// The request as it goes on the wire.
http::request<http::string_body> MakeRequest(const std::string& address, const HttpRequest& in) {
  http::request<http::string_body> req;
  req.method_string(in.method);
  req.target(in.target);
  req.version(11);
  req.set(http::field::host, address);
  req.set(http::field::user_agent, kUserAgent);
  if (!in.body.empty()) req.set(http::field::content_type, "application/json");
  req.body() = in.body;
  req.prepare_payload();
  for (const auto& [name, value] : in.headers) req.set(name, value);
  return req;
}

}  // namespace

// ---------------------------------------------------------------------------
// Free functions.

std::optional<std::string> HttpResponse::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (beast::iequals(key, name)) return value;
  }
  return std::nullopt;
}

absl::Status StatusFromResponse(const HttpResponse& response) {
  return DecodeError(response.status, response.body);
}

// ---------------------------------------------------------------------------
// HttpClient.

struct HttpClient::Impl {
  explicit Impl(std::string address) : conn(std::move(address)) {}

  // One attempt over the current connection. `*before_first_byte` tells the
  // caller whether the failure happened before any byte of the answer came,
  // i.e. whether the request may be retried on a fresh connection.
  absl::StatusOr<HttpResponse> RoundTrip(http::request<http::string_body>& req,
                                         Clock::time_point deadline,
                                         std::chrono::milliseconds timeout,
                                         bool* before_first_byte) {
    *before_first_byte = true;
    if (error_code ec = conn.Write(req, deadline)) {
      conn.Close();
      return TransportError("cannot send request to", conn.address(), ec, timeout);
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxBodyBytes);
    parser.header_limit(kMaxHeaderBytes);
    if (error_code ec = conn.Read(parser, /*header_only=*/false, deadline)) {
      *before_first_byte = !parser.got_some() && conn.buffer().size() == 0;
      conn.Close();
      return TransportError("cannot read response from", conn.address(), ec, timeout);
    }
    *before_first_byte = false;
    auto& res = parser.get();
    HttpResponse out;
    out.status = static_cast<int>(res.result_int());
    CopyHeaders(res, out);
    if (!res.keep_alive()) conn.Close();
    out.body = std::move(res.body());
    return out;
  }

  Connection conn;
};

HttpClient::HttpClient(std::string address)
    : address_(address), impl_(std::make_unique<Impl>(std::move(address))) {}

HttpClient::~HttpClient() = default;

absl::StatusOr<HttpResponse> HttpClient::Do(const HttpRequest& request,
                                            std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  auto req = MakeRequest(address_, request);
  Connection& conn = impl_->conn;
  bool reused = conn.is_open();
  if (!reused) {
    if (auto s = conn.Connect(deadline, timeout); !s.ok()) return s;
  }
  bool before_first_byte = false;
  auto result = impl_->RoundTrip(req, deadline, timeout, &before_first_byte);
  // A kept-alive connection the server has meanwhile closed fails before the
  // first byte of the answer; the request never reached it, so send it once
  // more on a fresh connection. A timeout is not retried: the time is spent.
  if (!result.ok() && reused && before_first_byte &&
      result.status().code() == absl::StatusCode::kUnavailable) {
    if (auto s = conn.Connect(deadline, timeout); !s.ok()) return s;
    result = impl_->RoundTrip(req, deadline, timeout, &before_first_byte);
  }
  return result;
}

absl::StatusOr<HttpResponse> HttpClient::Get(std::string target,
                                             std::chrono::milliseconds timeout) {
  return Do(HttpRequest{"GET", std::move(target), {}, {}}, timeout);
}

absl::StatusOr<HttpResponse> HttpClient::Put(std::string target, std::string body,
                                             std::chrono::milliseconds timeout) {
  return Do(HttpRequest{"PUT", std::move(target), std::move(body), {}}, timeout);
}

absl::StatusOr<HttpResponse> HttpClient::Post(std::string target, std::string body,
                                              std::chrono::milliseconds timeout) {
  return Do(HttpRequest{"POST", std::move(target), std::move(body), {}}, timeout);
}

absl::StatusOr<HttpResponse> HttpClient::Delete(std::string target,
                                                std::chrono::milliseconds timeout) {
  return Do(HttpRequest{"DELETE", std::move(target), {}, {}}, timeout);
}

// ---------------------------------------------------------------------------
// SseStream.

struct SseStream::Impl {
  explicit Impl(std::string address) : conn(std::move(address)), timer(conn.ioc()) {
    parser.body_limit(boost::none);  // an event stream has no end in advance
    parser.header_limit(kMaxHeaderBytes);
  }

  // Pulls the next body bytes into `pending`, waiting at most until `deadline`.
  // DeadlineExceeded leaves the stream as it was; the end of the body or a
  // broken connection sets `ended` and is Unavailable.
  absl::Status ReadMore(Clock::time_point deadline, std::chrono::milliseconds timeout) {
    if (parser.is_done()) return End(error_code());
    auto remaining = Remaining(deadline);
    if (remaining.count() <= 0) return TimedOut(timeout);
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    parser.get().body().more = true;

    // The read has no timer of its own (tcp_stream's would close the socket);
    // this timer cancels just the read, which Beast's parser can resume later.
    bool timer_fired = false;
    timer.expires_after(remaining);
    timer.async_wait([this, &timer_fired](const error_code& ec) {
      if (ec) return;  // cancelled: the read finished first
      timer_fired = true;
      error_code ignored;
      conn.stream().socket().cancel(ignored);
    });
    error_code result;
    bool done = false;
    http::async_read_some(conn.stream(), conn.buffer(), parser, [&](const error_code& ec, size_t) {
      result = ec;
      done = true;
      timer.cancel();
    });
    RunUntilDone(conn.ioc(), done);

    size_t got = chunk.size() - parser.get().body().size;
    pending.append(chunk.data(), got);
    if (result == http::error::need_buffer) result = {};  // the chunk is full: fine
    if (result == asio::error::operation_aborted && timer_fired) return TimedOut(timeout);
    if (result) return End(result);
    if (parser.is_done()) ended = true;  // deliver what is buffered first
    if (pending.size() > kMaxBodyBytes) {
      return End(error_code(asio::error::message_size));
    }
    return absl::OkStatus();
  }

  absl::Status TimedOut(std::chrono::milliseconds timeout) {
    return absl::DeadlineExceededError(
        muster::StrCat("no event from ", conn.address(), " within ", FormatDuration(timeout)));
  }

  // Marks the stream finished and says why.
  absl::Status End(const error_code& ec) {
    ended = true;
    conn.Close();
    if (!ec || ec == http::error::end_of_stream || ec == http::error::partial_message) {
      return absl::UnavailableError(
          muster::StrCat("the event stream from ", conn.address(), " was closed by the server"));
    }
    return absl::UnavailableError(
        muster::StrCat("the event stream from ", conn.address(), " broke: ", ec.message()));
  }

  // Consumes complete lines from `pending` and returns the first event they
  // complete, or nullopt when more bytes are needed. Lines end in "\n" or
  // "\r\n". Unlike the letter of the SSE spec, an event with an `event:` field
  // but no `data:` is dispatched too, so that a bare "event: compacted" is seen.
  std::optional<SseEvent> TakeEvent() {
    size_t pos = 0;
    std::optional<SseEvent> out;
    while (!out) {
      size_t nl = pending.find('\n', pos);
      if (nl == std::string::npos) break;
      std::string_view line(pending.data() + pos, nl - pos);
      pos = nl + 1;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty()) {
        if (has_data || has_event) {
          out = std::move(current);
          if (!has_event) out->event = "message";
        }
        current = SseEvent();
        has_data = has_event = false;
        continue;
      }
      if (line.front() == ':') {
        ++comments;
        continue;
      }
      size_t colon = line.find(':');
      std::string_view field = line.substr(0, colon);
      std::string_view value;
      if (colon != std::string_view::npos) {
        value = line.substr(colon + 1);
        if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      }
      if (field == "data") {
        if (has_data) current.data += '\n';
        current.data.append(value);
        has_data = true;
      } else if (field == "event") {
        current.event = std::string(value);
        has_event = true;
      } else if (field == "id") {
        current.id = std::string(value);
      }
      // "retry" and unknown fields are ignored, as the spec says.
    }
    pending.erase(0, pos);
    return out;
  }

  Connection conn;
  asio::steady_timer timer;
  http::response_parser<http::buffer_body> parser;
  std::array<char, kStreamChunkBytes> chunk{};
  HttpResponse response;
  std::string pending;  // body bytes not yet consumed as lines
  SseEvent current;     // the event being assembled from its lines
  bool has_data = false;
  bool has_event = false;
  bool ended = false;
  uint64_t comments = 0;
};

SseStream::SseStream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SseStream::~SseStream() = default;

absl::StatusOr<std::unique_ptr<SseStream>> SseStream::Open(
    std::string address, std::string target,
    std::vector<std::pair<std::string, std::string>> headers, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  auto impl = std::make_unique<Impl>(address);
  Connection& conn = impl->conn;
  if (auto s = conn.Connect(deadline, timeout); !s.ok()) return s;

  HttpRequest request{"GET", std::move(target), {}, {}};
  request.headers.emplace_back("Accept", "text/event-stream");
  request.headers.emplace_back("Cache-Control", "no-cache");
  for (auto& h : headers) request.headers.push_back(std::move(h));
  auto req = MakeRequest(address, request);
  if (error_code ec = conn.Write(req, deadline)) {
    return TransportError("cannot send request to", address, ec, timeout);
  }
  if (error_code ec = conn.Read(impl->parser, /*header_only=*/true, deadline)) {
    return TransportError("cannot read response from", address, ec, timeout);
  }
  conn.stream().expires_never();  // from here on each Next() bounds its own wait

  auto& res = impl->parser.get();
  impl->response.status = static_cast<int>(res.result_int());
  CopyHeaders(res, impl->response);
  if (impl->response.status != 200) {
    // Read the (small) error body for its message, within the same deadline.
    while (!impl->ended) {
      absl::Status s = impl->ReadMore(deadline, timeout);
      if (absl::IsDeadlineExceeded(s)) return s;
      if (!s.ok() || impl->pending.size() > kMaxErrorBodyBytes) break;
    }
    impl->response.body = std::move(impl->pending);
    absl::Status s = StatusFromResponse(impl->response);
    if (s.ok()) {
      return absl::InternalError(muster::StrCat("unexpected HTTP ", impl->response.status,
                                                " for an event stream from ", address));
    }
    return s;
  }
  return std::unique_ptr<SseStream>(new SseStream(std::move(impl)));
}

const HttpResponse& SseStream::response() const { return impl_->response; }

absl::StatusOr<SseEvent> SseStream::Next(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (auto event = impl_->TakeEvent()) return *std::move(event);
    if (impl_->ended) return impl_->End(error_code());
    if (auto s = impl_->ReadMore(deadline, timeout); !s.ok()) return s;
  }
}

uint64_t SseStream::comments_seen() const { return impl_->comments; }

}  // namespace muster::wire
