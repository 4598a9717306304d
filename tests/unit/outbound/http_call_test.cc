// HttpCall and TlsClient against real servers: a small HTTP/1.1 server on
// 127.0.0.1 (https with a throwaway self-signed certificate), in-process on
// a thread of its own, that answers each request with scripted raw bytes,
// or with none, holding the connection open. The client runs on an
// io_context with two threads, on a strand, as the HTTP checks do.
#include "server/outbound/http_call.h"

#include <openssl/ssl.h>

#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/ssl.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/strings.h"
#include "server/async_util.h"
#include "server/outbound/http_url.h"
#include "server/outbound/tls_client.h"
#include "support/loopback_listener.h"
#include "support/self_signed_cert.h"
#include "support/status_matchers.h"

namespace muster::outbound {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using ::testing::StartsWith;
using testing::IsOk;
using testing::StatusIs;

// Far above any timeout a test gives an exchange that should end by itself.
constexpr milliseconds kWait{20000};

// An HTTP/1.1 server on a loopback address, one request per connection.
class Server {
 public:
  struct Seen {
    std::string method;
    std::string target;
    std::string host;
    std::string user_agent;
    std::string connection;
    std::string extra;  // the X-Extra header
    std::string body;
    std::string sni;  // the name the client sent in the TLS handshake, if any
  };

  explicit Server(std::shared_ptr<ssl::context> tls = nullptr,
                  const std::string& address = "127.0.0.1")
      : tls_(std::move(tls)), listener_(address) {
    listener_.Start([this](tcp::socket socket) { return Session(std::move(socket)); });
  }
  ~Server() { listener_.Stop(); }

  bool listening() const { return listener_.port() != 0; }
  uint16_t port() const { return listener_.port(); }

  // What every later request gets: `raw` written as it is; then the
  // connection is closed, or with `hold` kept open until the client closes it.
  void Reply(std::string raw, bool hold = false) {
    std::lock_guard lock(mu_);
    raw_ = std::move(raw);
    hold_ = hold;
  }

  std::vector<Seen> seen() const {
    std::lock_guard lock(mu_);
    return seen_;
  }
  // Held connections the client closed.
  int closed_by_client() const {
    std::lock_guard lock(mu_);
    return closed_by_client_;
  }

 private:
  awaitable<void> Session(tcp::socket socket) {
    if (!tls_) {
      co_await Serve(socket, "");
      co_return;
    }
    ssl::stream<tcp::socket> stream(std::move(socket), *tls_);
    auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, use_tuple);
    if (ec) co_return;
    const char* sni = SSL_get_servername(stream.native_handle(), TLSEXT_NAMETYPE_host_name);
    co_await Serve(stream, sni == nullptr ? "" : sni);
  }

  template <typename Stream>
  awaitable<void> Serve(Stream& stream, std::string sni) {
    beast::flat_buffer buffer;
    http::request<http::string_body> request;
    auto [ec, n] = co_await http::async_read(stream, buffer, request, use_tuple);
    if (ec) co_return;
    std::string raw;
    bool hold;
    {
      std::lock_guard lock(mu_);
      seen_.push_back({std::string(request.method_string()), std::string(request.target()),
                       std::string(request[http::field::host]),
                       std::string(request[http::field::user_agent]),
                       std::string(request[http::field::connection]),
                       std::string(request["X-Extra"]), request.body(), std::move(sni)});
      raw = raw_;
      hold = hold_;
    }
    co_await asio::async_write(stream, asio::buffer(raw), use_tuple);
    if (!hold) co_return;
    // Until the client closes: a read that ends with an error.
    char byte;
    auto [read_error, got] = co_await stream.async_read_some(asio::buffer(&byte, 1), use_tuple);
    if (read_error && read_error != asio::error::operation_aborted) {
      std::lock_guard lock(mu_);
      ++closed_by_client_;
    }
  }

  const std::shared_ptr<ssl::context> tls_;
  testing::LoopbackListener listener_;

  mutable std::mutex mu_;
  std::string raw_ = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  bool hold_ = false;
  std::vector<Seen> seen_;
  int closed_by_client_ = 0;
};

std::string Answer(unsigned status, std::string_view reason, std::string_view body,
                   std::string_view headers = "") {
  return StrCat("HTTP/1.1 ", status, reason.empty() ? "" : " ", reason, "\r\nContent-Length: ",
                body.size(), "\r\n", headers, "\r\n", body);
}

// The client's side: two I/O threads, and one exchange at a time on a strand.
class Client {
 public:
  Client() : work_(asio::make_work_guard(ioc_)) {
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { ioc_.run(); });
  }
  ~Client() {
    work_.reset();
    ioc_.stop();
    for (auto& t : threads_) t.join();
  }

  // Starts the exchange; `Wait` gives its result.
  struct Pending {
    std::shared_ptr<HttpCall> call;
    asio::strand<asio::io_context::executor_type> strand;
    std::future<absl::StatusOr<HttpAnswer>> result;

    std::optional<absl::StatusOr<HttpAnswer>> Wait() {
      if (result.wait_for(kWait) != std::future_status::ready) return std::nullopt;
      return result.get();
    }
    // Close(), on the call's strand.
    void Close() {
      asio::post(strand, [call = call] { call->Close(); });
    }
  };

  Pending Start(const HttpUrl& url, Request request, ExchangeOptions options,
                std::shared_ptr<const TlsClient> tls = nullptr) {
    auto strand = asio::make_strand(ioc_.get_executor());
    auto call = HttpCall::Make(strand, url, std::move(tls));
    auto result = asio::co_spawn(strand, call->Run(std::move(request), std::move(options)),
                                 asio::use_future);
    return Pending{call, strand, std::move(result)};
  }

  absl::StatusOr<HttpAnswer> Get(const std::string& text, ExchangeOptions options = {},
                                 std::shared_ptr<const TlsClient> tls = nullptr) {
    auto url = ParseHttpUrl(text);
    if (!url.ok()) return url.status();
    auto result = Start(*url, NewRequest(*url, "GET", "outbound-test"), std::move(options),
                        std::move(tls))
                      .Wait();
    if (!result) return absl::InternalError("no result within kWait");
    return *std::move(result);
  }

 private:
  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
};

ExchangeOptions ReadBody(size_t bytes, milliseconds timeout = milliseconds(5000)) {
  ExchangeOptions options;
  options.timeout = timeout;
  options.body_bytes = [bytes](unsigned) { return bytes; };
  return options;
}

class HttpCallTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.listening()); }
  std::string Url(std::string_view path = "/") const {
    return StrCat("http://127.0.0.1:", server_.port(), path);
  }

  Server server_;
  Client client_;
};

// The request carries Host, User-Agent, the caller's headers and body, and
// Connection: close; the answer its status, reason, headers and body.
TEST_F(HttpCallTest, OneRequestOneAnswer) {
  server_.Reply(Answer(201, "Created", "made it", "Retry-After: 7\r\nX-A: b\r\n"));
  auto url = ParseHttpUrl(Url("/path?q=1#frag"));
  ASSERT_THAT(url, IsOk());
  Request request = NewRequest(*url, "POST", "outbound-test");
  request.set("X-Extra", "extra");
  request.body() = R"({"a":1})";
  auto answer = client_.Start(*url, std::move(request), ReadBody(100)).Wait();
  ASSERT_TRUE(answer);
  ASSERT_THAT(*answer, IsOk());
  const HttpAnswer& a = **answer;
  EXPECT_EQ(a.status, 201u);
  EXPECT_EQ(a.reason, "Created");
  EXPECT_EQ(a.StatusLine(), "HTTP 201 Created");
  EXPECT_EQ(a.body, "made it");
  EXPECT_FALSE(a.body_cut_by_deadline);
  EXPECT_EQ(a.Header("retry-after"), "7");
  EXPECT_EQ(a.Header("X-A"), "b");
  EXPECT_EQ(a.Header("X-None"), std::nullopt);

  auto seen = server_.seen();
  ASSERT_THAT(seen, SizeIs(1));
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].target, "/path?q=1");
  EXPECT_EQ(seen[0].host, StrCat("127.0.0.1:", server_.port()));
  EXPECT_EQ(seen[0].user_agent, "outbound-test");
  EXPECT_EQ(seen[0].connection, "close");
  EXPECT_EQ(seen[0].extra, "extra");
  EXPECT_EQ(seen[0].body, R"({"a":1})");
}

// No reason phrase: the standard one. A method Beast does not know is sent
// as written.
TEST_F(HttpCallTest, StandardReasonAndUnknownMethod) {
  server_.Reply("HTTP/1.1 503 \r\nContent-Length: 0\r\n\r\n");
  auto url = ParseHttpUrl(Url());
  ASSERT_THAT(url, IsOk());
  auto answer = client_.Start(*url, NewRequest(*url, "BREW", "t"), ReadBody(10)).Wait();
  ASSERT_TRUE(answer);
  ASSERT_THAT(*answer, IsOk());
  EXPECT_EQ((*answer)->StatusLine(), "HTTP 503 Service Unavailable");
  EXPECT_EQ(server_.seen().at(0).method, "BREW");
}

// Only the start of a large body is read, as much as body_bytes says for
// the status; none at all when it says 0.
TEST_F(HttpCallTest, BodyIsBounded) {
  server_.Reply(Answer(200, "OK", std::string(4 << 20, 'x')));
  auto answer = client_.Get(Url(), ReadBody(1000));
  ASSERT_THAT(answer, IsOk());
  EXPECT_EQ(answer->body, std::string(1000, 'x'));

  ExchangeOptions only_failures;
  only_failures.body_bytes = [](unsigned status) { return status >= 300 ? 50 : 0; };
  answer = client_.Get(Url(), only_failures);
  ASSERT_THAT(answer, IsOk());
  EXPECT_EQ(answer->status, 200u);
  EXPECT_EQ(answer->body, "");
  server_.Reply(Answer(500, "Internal Server Error", std::string(100, 'y')));
  answer = client_.Get(Url(), only_failures);
  ASSERT_THAT(answer, IsOk());
  EXPECT_EQ(answer->body, std::string(50, 'y'));
}

// An answer to HEAD announces a body it does not send: the exchange does
// not wait for it.
TEST_F(HttpCallTest, HeadAnswerHasNoBody) {
  server_.Reply("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", /*hold=*/true);
  auto url = ParseHttpUrl(Url());
  ASSERT_THAT(url, IsOk());
  auto answer =
      client_.Start(*url, NewRequest(*url, "HEAD", "t"), ReadBody(100, milliseconds(10000))).Wait();
  ASSERT_TRUE(answer);
  ASSERT_THAT(*answer, IsOk());
  EXPECT_EQ((*answer)->status, 200u);
  EXPECT_EQ((*answer)->body, "");
  EXPECT_FALSE((*answer)->body_cut_by_deadline);
}

// A server that does not answer: the exchange ends at the deadline, says
// which step it waited for, and closes the connection.
TEST_F(HttpCallTest, DeadlineEndsTheExchange) {
  server_.Reply("", /*hold=*/true);
  const auto start = Clock::now();
  auto answer = client_.Get(Url(), ReadBody(10, milliseconds(300)));
  const auto took = Clock::now() - start;
  EXPECT_THAT(answer, StatusIs(absl::StatusCode::kDeadlineExceeded,
                               StartsWith(StrCat("timed out after 300ms (waiting for the answer of "
                                                 "127.0.0.1:",
                                                 server_.port(), ")"))));
  EXPECT_GE(took, milliseconds(300));
  EXPECT_LT(took, milliseconds(5000));
  for (int i = 0; i < 2000 && server_.closed_by_client() < 1; ++i) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_EQ(server_.closed_by_client(), 1);
}

// When the deadline passes while the body is read, the answer comes back
// with the body that arrived, marked as cut.
TEST_F(HttpCallTest, DeadlineInTheBodyKeepsTheStatus) {
  server_.Reply("HTTP/1.1 404 Not Found\r\nContent-Length: 100\r\n\r\nabc", /*hold=*/true);
  auto answer = client_.Get(Url(), ReadBody(100, milliseconds(300)));
  ASSERT_THAT(answer, IsOk());
  EXPECT_EQ(answer->status, 404u);
  EXPECT_EQ(answer->body, "abc");
  EXPECT_TRUE(answer->body_cut_by_deadline);
}

// Close ends an exchange in flight at once, long before its deadline; a
// call closed before it ran does nothing.
TEST_F(HttpCallTest, CloseEndsTheExchange) {
  server_.Reply("", /*hold=*/true);
  auto url = ParseHttpUrl(Url());
  ASSERT_THAT(url, IsOk());
  auto pending = client_.Start(*url, NewRequest(*url, "GET", "t"), ReadBody(10, std::chrono::minutes(5)));
  for (int i = 0; i < 2000 && server_.seen().empty(); ++i) std::this_thread::sleep_for(milliseconds(5));
  ASSERT_THAT(server_.seen(), SizeIs(1));
  const auto start = Clock::now();
  pending.Close();
  auto answer = pending.Wait();
  ASSERT_TRUE(answer);
  EXPECT_THAT(*answer, StatusIs(absl::StatusCode::kCancelled, ::testing::_));
  EXPECT_LT(Clock::now() - start, milliseconds(5000));
  for (int i = 0; i < 2000 && server_.closed_by_client() < 1; ++i) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_EQ(server_.closed_by_client(), 1);
}

// Nothing listening: Unavailable with the connect error.
TEST_F(HttpCallTest, RefusedConnection) {
  uint16_t port;
  {
    asio::io_context ioc;
    tcp::acceptor closed(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = closed.local_endpoint().port();
  }
  auto answer = client_.Get(StrCat("http://127.0.0.1:", port, "/"));
  EXPECT_THAT(answer, StatusIs(absl::StatusCode::kUnavailable,
                               AllOf(StartsWith(StrCat("connect to 127.0.0.1:", port, ": ")),
                                     HasSubstr("refused"))));
}

// A host name is resolved ("localhost" may be ::1 first; the server is on
// 127.0.0.1 only, so the next address must be tried); the Host header is
// the authority as written.
TEST_F(HttpCallTest, HostNameIsResolved) {
  auto answer = client_.Get(StrCat("http://localhost:", server_.port(), "/"), ReadBody(10));
  ASSERT_THAT(answer, IsOk());
  EXPECT_EQ(answer->body, "ok");
  EXPECT_EQ(server_.seen().at(0).host, StrCat("localhost:", server_.port()));
}

TEST_F(HttpCallTest, Ipv6Literal) {
  Server v6(nullptr, "::1");
  if (!v6.listening()) GTEST_SKIP() << "no IPv6 loopback here";
  auto answer = client_.Get(StrCat("http://[::1]:", v6.port(), "/six"), ReadBody(10));
  ASSERT_THAT(answer, IsOk());
  EXPECT_EQ(answer->body, "ok");
  EXPECT_EQ(v6.seen().at(0).host, StrCat("[::1]:", v6.port()));
}

// An https URL needs a TlsClient.
TEST_F(HttpCallTest, HttpsWithoutTlsClientIsRefused) {
  EXPECT_THAT(client_.Get(StrCat("https://127.0.0.1:", server_.port(), "/")),
              StatusIs(absl::StatusCode::kFailedPrecondition, ::testing::_));
}

// ---------------------------------------------------------------------------
// https, with a self-signed certificate for IP 127.0.0.1 made at test time.

TlsClientOptions Unverified() {
  TlsClientOptions options;
  options.verify = false;
  return options;
}

TlsClientOptions Trusting(std::string ca_file) {
  TlsClientOptions options;
  options.ca_file = std::move(ca_file);
  return options;
}

class HttpsCallTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cert = testing::SelfSignedCert::Make("muster-outbound-tls");
    if (absl::IsFailedPrecondition(cert.status())) GTEST_SKIP() << cert.status();
    ASSERT_TRUE(cert.ok()) << cert.status();
    cert_.emplace(*std::move(cert));
    server_.emplace(cert_->ServerContext());
    ASSERT_TRUE(server_->listening());
  }

  std::string Url(std::string_view host = "127.0.0.1") const {
    return StrCat("https://", host, ":", server_->port(), "/secure");
  }
  std::shared_ptr<const TlsClient> Tls(TlsClientOptions options) {
    auto tls = TlsClient::Make(options);
    EXPECT_THAT(tls, IsOk());
    return tls.ok() ? *tls : nullptr;
  }

  std::optional<testing::SelfSignedCert> cert_;
  std::optional<Server> server_;
  Client client_;
};

// Without verification the self-signed certificate is accepted.
TEST_F(HttpsCallTest, SkipVerifyAcceptsAnyCertificate) {
  auto answer = client_.Get(Url(), ReadBody(10), Tls(Unverified()));
  ASSERT_THAT(answer, IsOk());
  EXPECT_EQ(answer->body, "ok");
  EXPECT_EQ(server_->seen().at(0).target, "/secure");
}

// Verified against the system's roots it is refused in the handshake, with
// OpenSSL's reason, and no request is sent.
TEST_F(HttpsCallTest, SystemRootsRefuseSelfSigned) {
  auto answer = client_.Get(Url(), ReadBody(10), Tls({}));
  EXPECT_THAT(answer,
              StatusIs(absl::StatusCode::kUnavailable,
                       AllOf(StartsWith(StrCat("TLS handshake with 127.0.0.1:", server_->port())),
                             HasSubstr("certificate verify failed"),
                             HasSubstr("self-signed certificate"))));
  EXPECT_THAT(server_->seen(), SizeIs(0));
}

// Trusted through a CA file, the certificate passes, its IP address
// matching the URL's; no SNI is sent for an IP address.
TEST_F(HttpsCallTest, CaFileIsTrusted) {
  auto answer = client_.Get(Url(), ReadBody(10), Tls(Trusting(cert_->cert_file())));
  ASSERT_THAT(answer, IsOk());
  EXPECT_EQ(answer->body, "ok");
  EXPECT_EQ(server_->seen().at(0).sni, "");
}

// A trusted certificate for another name is refused ("localhost" is not in
// it); the name goes out as SNI.
TEST_F(HttpsCallTest, NameMustMatch) {
  auto answer = client_.Get(Url("localhost"), ReadBody(10),
                            Tls(Trusting(cert_->cert_file())));
  EXPECT_THAT(answer, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("hostname mismatch")));
  EXPECT_THAT(server_->seen(), SizeIs(0));
  // Unverified, the same exchange goes through and shows the SNI.
  answer = client_.Get(Url("localhost"), ReadBody(10), Tls(Unverified()));
  ASSERT_THAT(answer, IsOk());
  EXPECT_EQ(server_->seen().at(0).sni, "localhost");
}

TEST(TlsClientTest, UnreadableCaFileIsAnError) {
  EXPECT_THAT(TlsClient::Make(Trusting("/nonexistent/ca.pem")),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("/nonexistent/ca.pem")));
}

}  // namespace
}  // namespace muster::outbound
