// The HTTP probe against a real HTTP server on 127.0.0.1 (and an https one
// with a throwaway self-signed certificate made by the openssl command line),
// run in-process on a thread of its own. The probe runs on an io_context
// with two threads, as in musterd.
#include <sys/stat.h>

#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/strings.h"
#include "server/async_util.h"
#include "server/health/probe.h"
#include "unit/health/probe_test_support.h"
#include "support/loopback_listener.h"
#include "support/self_signed_cert.h"
#include "support/status_matchers.h"

namespace muster {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using std::chrono::milliseconds;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using ::testing::StartsWith;
using testing::StatusIs;

using probe_test::Describe;
using probe_test::IoThreads;
using probe_test::kWait;
using probe_test::PendingRun;

// A one-request-per-connection HTTP/1.1 server on a loopback address, on a
// thread of its own. Answers every request with the status and body it was
// last told, or never (the connection stays open, silent).
class TestHttpServer {
 public:
  struct Seen {
    std::string method;
    std::string target;
    std::string host;
    std::string user_agent;
    std::string x_check;
  };

  explicit TestHttpServer(std::shared_ptr<ssl::context> tls = nullptr,
                          const std::string& address = "127.0.0.1")
      : tls_(std::move(tls)), listener_(address) {
    listener_.Start([this](tcp::socket socket) { return Session(std::move(socket)); });
  }
  ~TestHttpServer() { listener_.Stop(); }

  bool listening() const { return listener_.port() != 0; }
  uint16_t port() const { return listener_.port(); }

  void Answer(unsigned status, std::string body) {
    std::lock_guard lock(mu_);
    status_ = status;
    body_ = std::move(body);
    never_ = false;
  }
  void AnswerNever() {
    std::lock_guard lock(mu_);
    never_ = true;
  }
  std::vector<Seen> seen() const {
    std::lock_guard lock(mu_);
    return seen_;
  }

 private:
  awaitable<void> Session(tcp::socket socket) {
    if (!tls_) {
      co_await Serve(socket);
      co_return;
    }
    ssl::stream<tcp::socket> stream(std::move(socket), *tls_);
    auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, use_tuple);
    if (!ec) co_await Serve(stream);
  }

  template <typename Stream>
  awaitable<void> Serve(Stream& stream) {
    beast::flat_buffer buffer;
    http::request<http::string_body> request;
    auto [ec, n] = co_await http::async_read(stream, buffer, request, use_tuple);
    if (ec) co_return;
    unsigned status;
    std::string body;
    bool never;
    {
      std::lock_guard lock(mu_);
      seen_.push_back({std::string(request.method_string()), std::string(request.target()),
                       std::string(request[http::field::host]),
                       std::string(request[http::field::user_agent]),
                       std::string(request["X-Check"])});
      status = status_;
      body = body_;
      never = never_;
    }
    if (never) {
      asio::steady_timer forever(listener_.context(), std::chrono::hours(1));
      co_await forever.async_wait(use_tuple);
      co_return;
    }
    http::response<http::string_body> response;
    response.result(status);
    response.version(11);
    if (status >= 300 && status < 400) response.set(http::field::location, "/elsewhere");
    response.set(http::field::content_type, "text/plain");
    if (request.method() == http::verb::head) {
      // Says how long the body would be, and sends none.
      response.set(http::field::content_length, std::to_string(body.size()));
    } else {
      response.body() = std::move(body);
      response.prepare_payload();
    }
    co_await http::async_write(stream, response, use_tuple);
  }

  const std::shared_ptr<ssl::context> tls_;
  testing::LoopbackListener listener_;

  mutable std::mutex mu_;
  unsigned status_ = 200;
  std::string body_ = "ok";
  bool never_ = false;
  std::vector<Seen> seen_;
};

Check HttpCheck(std::string target) {
  Check check;
  check.id = "web";
  check.type = CheckType::kHttp;
  check.target = std::move(target);
  return check;
}

class HttpProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.listening());
    instance_.service = "web";
    instance_.id = "web-1";
    instance_.address = StrCat("127.0.0.1:", server_.port());
  }

  std::shared_ptr<Probe> Make(const Check& check) {
    auto probe = MakeHttpProbe(check, instance_, ProbeEnvironment{io_.executor(), false});
    EXPECT_TRUE(probe.ok()) << probe.status();
    return probe.ok() ? *probe : nullptr;
  }

  std::optional<ProbeResult> RunOnce(Probe& probe, milliseconds timeout = milliseconds(5000)) {
    return PendingRun(probe, timeout).Wait();
  }

  IoThreads io_;
  TestHttpServer server_;
  Instance instance_;
};

// A path target goes to the instance's address, with the Host, User-Agent
// and the check's own headers; a 2xx is passing, its body in the output.
TEST_F(HttpProbeTest, PathOnInstanceAddressIsPassingOn200) {
  server_.Answer(200, "all good");
  Check check = HttpCheck("/health?deep=1");
  check.headers["X-Check"] = "yes";
  auto probe = Make(check);
  ASSERT_NE(probe, nullptr);
  auto result = RunOnce(*probe);
  ASSERT_TRUE(result);
  EXPECT_EQ(Describe(result), "passing: HTTP 200 OK\nall good");
  auto seen = server_.seen();
  ASSERT_THAT(seen, SizeIs(1));
  EXPECT_EQ(seen[0].method, "GET");
  EXPECT_EQ(seen[0].target, "/health?deep=1");
  EXPECT_EQ(seen[0].host, instance_.address);
  EXPECT_EQ(seen[0].user_agent, "musterd-health-check");
  EXPECT_EQ(seen[0].x_check, "yes");
}

// The same probe follows the server: 200 passing, 429 warning, 500 and 404
// critical, and back.
TEST_F(HttpProbeTest, StatusDecidesHealth) {
  auto probe = Make(HttpCheck(""));
  ASSERT_NE(probe, nullptr);
  server_.Answer(204, "");
  EXPECT_EQ(Describe(RunOnce(*probe)), "passing: HTTP 204 No Content");
  server_.Answer(429, "slow down");
  EXPECT_EQ(Describe(RunOnce(*probe)), "warning: HTTP 429 Too Many Requests\nslow down");
  server_.Answer(500, "boom");
  EXPECT_EQ(Describe(RunOnce(*probe)), "critical: HTTP 500 Internal Server Error\nboom");
  server_.Answer(404, "");
  EXPECT_EQ(Describe(RunOnce(*probe)), "critical: HTTP 404 Not Found");
  server_.Answer(200, "");
  EXPECT_EQ(Describe(RunOnce(*probe)), "passing: HTTP 200 OK");
  auto seen = server_.seen();
  ASSERT_THAT(seen, SizeIs(5));
  EXPECT_EQ(seen[0].target, "/");
}

// A redirect is critical and not followed: the server sees one request.
TEST_F(HttpProbeTest, RedirectIsCriticalAndNotFollowed) {
  server_.Answer(302, "");
  auto probe = Make(HttpCheck("/old"));
  ASSERT_NE(probe, nullptr);
  EXPECT_EQ(Describe(RunOnce(*probe)), "critical: HTTP 302 Found (redirects are not followed)");
  EXPECT_THAT(server_.seen(), SizeIs(1));
}

// A server that does not answer within the timeout is critical.
TEST_F(HttpProbeTest, SlowAnswerTimesOut) {
  server_.AnswerNever();
  auto probe = Make(HttpCheck("/slow"));
  ASSERT_NE(probe, nullptr);
  auto result = RunOnce(*probe, milliseconds(300));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, Health::kCritical) << Describe(result);
  EXPECT_THAT(result->output, StartsWith("timed out after 300ms (waiting for the answer of"));
  // The next run, with the server answering again, is a fresh start.
  server_.Answer(200, "");
  EXPECT_EQ(Describe(RunOnce(*probe)), "passing: HTTP 200 OK");
}

// A large body is not read to the end: only its start is in the (bounded)
// output, and the status decides.
TEST_F(HttpProbeTest, LargeBodyIsCutAndStatusCounts) {
  server_.Answer(200, std::string(4 << 20, 'x'));
  auto probe = Make(HttpCheck("/big"));
  ASSERT_NE(probe, nullptr);
  auto result = RunOnce(*probe);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, Health::kPassing) << Describe(result).substr(0, 200);
  EXPECT_THAT(result->output, StartsWith("HTTP 200 OK\nxxxx"));
  EXPECT_LE(result->output.size(), kMaxCheckOutputBytes);
  EXPECT_THAT(result->output, EndsWith("(output cut)"));
}

// A full URL with its own port, path and query, and another method. HEAD
// answers carry no body even when they announce one.
TEST_F(HttpProbeTest, FullUrlAndMethod) {
  server_.Answer(200, "0123456789");
  Check check = HttpCheck(StrCat("http://127.0.0.1:", server_.port(), "/x/y?z=1#fragment"));
  check.method = "POST";
  instance_.address = "127.0.0.1:1";  // not used with a full URL
  auto probe = Make(check);
  ASSERT_NE(probe, nullptr);
  EXPECT_EQ(Describe(RunOnce(*probe)), "passing: HTTP 200 OK\n0123456789");
  check.method = "HEAD";
  auto head = Make(check);
  ASSERT_NE(head, nullptr);
  EXPECT_EQ(Describe(RunOnce(*head)), "passing: HTTP 200 OK");
  auto seen = server_.seen();
  ASSERT_THAT(seen, SizeIs(2));
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].target, "/x/y?z=1");
  EXPECT_EQ(seen[1].method, "HEAD");
}

// A host name is resolved ("localhost": ::1 and/or 127.0.0.1; the server
// listens on 127.0.0.1 only, so another address first must fall through).
TEST_F(HttpProbeTest, HostNameIsResolved) {
  server_.Answer(200, "");
  auto probe = Make(HttpCheck(StrCat("http://localhost:", server_.port(), "/")));
  ASSERT_NE(probe, nullptr);
  EXPECT_EQ(Describe(RunOnce(*probe)), "passing: HTTP 200 OK");
  auto seen = server_.seen();
  ASSERT_THAT(seen, SizeIs(1));
  EXPECT_EQ(seen[0].host, StrCat("localhost:", server_.port()));
}

// An IPv6 literal in brackets.
TEST_F(HttpProbeTest, Ipv6Literal) {
  TestHttpServer v6(nullptr, "::1");
  if (!v6.listening()) GTEST_SKIP() << "no IPv6 loopback here";
  v6.Answer(200, "six");
  auto probe = Make(HttpCheck(StrCat("http://[::1]:", v6.port(), "/")));
  ASSERT_NE(probe, nullptr);
  EXPECT_EQ(Describe(RunOnce(*probe)), "passing: HTTP 200 OK\nsix");
  auto seen = v6.seen();
  ASSERT_THAT(seen, SizeIs(1));
  EXPECT_EQ(seen[0].host, StrCat("[::1]:", v6.port()));
}

// Nothing listening: critical, with the connect error.
TEST_F(HttpProbeTest, RefusedConnectionIsCritical) {
  uint16_t port;
  {
    asio::io_context ioc;
    tcp::acceptor closed(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = closed.local_endpoint().port();
  }
  auto probe = Make(HttpCheck(StrCat("http://127.0.0.1:", port, "/")));
  ASSERT_NE(probe, nullptr);
  auto result = RunOnce(*probe);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, Health::kCritical);
  EXPECT_THAT(result->output, StartsWith(StrCat("connect to 127.0.0.1:", port, ": ")));
  EXPECT_THAT(result->output, HasSubstr("refused"));
}

// Cancel ends a run in flight soon (long before its timeout), and every
// later run at once; the probe stays alive for its run without the caller.
TEST_F(HttpProbeTest, CancelEndsTheRunInFlight) {
  server_.AnswerNever();
  auto probe = Make(HttpCheck("/"));
  ASSERT_NE(probe, nullptr);
  PendingRun run(*probe, std::chrono::minutes(5));
  // Cancel only once the request is there, so the cancel meets a run in the
  // middle of its work.
  for (int i = 0; i < 2000 && server_.seen().empty(); ++i) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  ASSERT_THAT(server_.seen(), SizeIs(1));
  probe->Cancel();
  std::weak_ptr<Probe> weak = probe;
  probe.reset();
  EXPECT_EQ(Describe(run.Wait()), "critical: cancelled");
  auto again = weak.lock();
  if (again != nullptr) {
    EXPECT_EQ(Describe(RunOnce(*again)), "critical: cancelled");
  }
  EXPECT_THAT(server_.seen(), SizeIs(1));
}

// Targets the probe cannot use.
TEST_F(HttpProbeTest, RejectsBadTargets) {
  const ProbeEnvironment env{io_.executor(), false};
  for (const char* target : {"ftp://127.0.0.1/", "http://", "http://user@127.0.0.1/",
                             "http://127.0.0.1:0/", "http://127.0.0.1:99999/", "health",
                             "http://127.0.0.1/a b"}) {
    EXPECT_THAT(MakeHttpProbe(HttpCheck(target), instance_, env),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("check \"web\"")))
        << target;
  }
}

// ---------------------------------------------------------------------------
// https, with a self-signed certificate for 127.0.0.1 made at test time.

class HttpsProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cert = testing::SelfSignedCert::Make("muster-https-probe");
    if (absl::IsFailedPrecondition(cert.status())) GTEST_SKIP() << cert.status();
    ASSERT_TRUE(cert.ok()) << cert.status();
    cert_.emplace(*std::move(cert));
    server_.emplace(cert_->ServerContext());
    ASSERT_TRUE(server_->listening());
    instance_.address = StrCat("127.0.0.1:", server_->port());
  }
  void TearDown() override { server_.reset(); }

  std::shared_ptr<Probe> Make(const Check& check) {
    auto probe = MakeHttpProbe(check, instance_, ProbeEnvironment{io_.executor(), false});
    EXPECT_TRUE(probe.ok()) << probe.status();
    return probe.ok() ? *probe : nullptr;
  }

  IoThreads io_;
  std::optional<testing::SelfSignedCert> cert_;
  std::optional<TestHttpServer> server_;
  Instance instance_;
};

// With tls_skip_verify the self-signed certificate is accepted.
TEST_F(HttpsProbeTest, SkipVerifyAcceptsSelfSigned) {
  server_->Answer(200, "secure");
  Check check = HttpCheck(StrCat("https://127.0.0.1:", server_->port(), "/health"));
  check.tls_skip_verify = true;
  auto probe = Make(check);
  ASSERT_NE(probe, nullptr);
  EXPECT_EQ(Describe(PendingRun(*probe, milliseconds(5000)).Wait()), "passing: HTTP 200 OK\nsecure");
  auto seen = server_->seen();
  ASSERT_THAT(seen, SizeIs(1));
  EXPECT_EQ(seen[0].target, "/health");
}

// Verified against the system CAs, the self-signed certificate fails the
// handshake: critical, and no request is sent.
TEST_F(HttpsProbeTest, VerifyRejectsSelfSigned) {
  server_->Answer(200, "secure");
  auto probe = Make(HttpCheck(StrCat("https://127.0.0.1:", server_->port(), "/health")));
  ASSERT_NE(probe, nullptr);
  auto result = PendingRun(*probe, milliseconds(5000)).Wait();
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, Health::kCritical);
  EXPECT_THAT(result->output, StartsWith(StrCat("TLS handshake with 127.0.0.1:", server_->port())));
  EXPECT_THAT(result->output, HasSubstr("certificate verify failed"));
  EXPECT_THAT(result->output, HasSubstr("self-signed certificate"));
  EXPECT_THAT(server_->seen(), SizeIs(0));
}

}  // namespace
}  // namespace muster
