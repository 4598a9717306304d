// The webhook notifier against real receivers: small HTTP(S) servers on
// 127.0.0.1, in-process, each on a thread of its own. A receiver answers
// each request as scripted: with a status, or not until the test releases
// it (a hung receiver, when it never does).
#include <chrono>
#include <condition_variable>
#include <deque>
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
#include "server/webhooks/webhook_notifier.h"
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
using Clock = std::chrono::steady_clock;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::StatusIs;

// Far above anything that should happen by itself; waiting this long means
// it did not happen.
constexpr milliseconds kWait{20000};

// Polls `condition` until it holds or kWait passed.
template <typename Condition>
bool WaitUntil(Condition condition) {
  const auto deadline = Clock::now() + kWait;
  while (!condition()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(2));
  }
  return true;
}

// "delivered 1 failed 0 ...", for failure messages.
std::string Describe(const WebhookNotifier::Stats& s) {
  return StrCat("delivered ", s.delivered, " failed ", s.failed, " dropped ", s.dropped,
                " retries ", s.retries, " queued ", s.queued);
}

// A one-request-per-connection HTTP/1.1 server on 127.0.0.1 (https when given
// a TLS context), on a thread of its own.
class Receiver {
 public:
  // A scripted answer: not until Release() is called, then 200.
  static constexpr int kHold = -1;

  struct Request {
    std::string method;
    std::string target;
    std::string host;
    std::string content_type;
    std::string user_agent;
    std::string content_length;
    std::string body;
    Clock::time_point at;  // when it was read in full
  };

  explicit Receiver(std::shared_ptr<ssl::context> tls = nullptr)
      : tls_(std::move(tls)), release_(listener_.context(), Clock::time_point::max()) {
    listener_.Start([this](tcp::socket socket) {
      return Session(std::make_shared<Connection>(std::move(socket)));
    });
  }
  ~Receiver() { listener_.Stop(); }

  bool listening() const { return listener_.port() != 0; }
  std::string Url(std::string_view path = "/hook") const {
    return StrCat(tls_ ? "https" : "http", "://127.0.0.1:", listener_.port(), path);
  }

  // The answers to the next requests, in order; `then` for every later one.
  void Script(std::vector<int> answers, int then = 200) {
    std::lock_guard lock(mu_);
    script_.assign(answers.begin(), answers.end());
    then_ = then;
  }

  // Answers the held requests (and later kHold ones) with 200.
  void Release() {
    {
      std::lock_guard lock(mu_);
      released_ = true;
    }
    asio::post(listener_.context(), [this] { release_.cancel(); });
  }

  // Waits until `n` requests were read in full.
  bool WaitForRequests(size_t n) {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, kWait, [&] { return requests_.size() >= n; });
  }
  // Waits until the client closed `n` connections that had no answer yet.
  bool WaitForAbandoned(size_t n) {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, kWait, [&] { return abandoned_ >= n; });
  }

  std::vector<Request> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  std::vector<std::string> bodies() const {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& r : requests_) out.push_back(r.body);
    return out;
  }
  size_t abandoned() const {
    std::lock_guard lock(mu_);
    return abandoned_;
  }

 private:
  // One connection's state, shared with the coroutine that watches for the
  // client closing it.
  struct Connection {
    explicit Connection(tcp::socket s) : socket(std::move(s)) {}
    tcp::socket socket;
    std::optional<ssl::stream<tcp::socket&>> tls;
    bool answered = false;
  };

  awaitable<void> Session(std::shared_ptr<Connection> c) {
    if (!tls_) {
      co_await Serve(c, c->socket);
      co_return;
    }
    c->tls.emplace(c->socket, *tls_);
    auto [ec] = co_await c->tls->async_handshake(ssl::stream_base::server, use_tuple);
    if (!ec) co_await Serve(c, *c->tls);
  }

  // Counts the client closing the connection before it got an answer.
  awaitable<void> WatchForClose(std::shared_ptr<Connection> c) {
    char byte;
    auto [ec, n] = co_await c->socket.async_read_some(asio::buffer(&byte, 1), use_tuple);
    if (ec && !c->answered && ec != asio::error::operation_aborted) {
      std::lock_guard lock(mu_);
      ++abandoned_;
      changed_.notify_all();
    }
  }

  template <typename Stream>
  awaitable<void> Serve(std::shared_ptr<Connection> c, Stream& stream) {
    beast::flat_buffer buffer;
    http::request<http::string_body> request;
    auto [ec, n] = co_await http::async_read(stream, buffer, request, use_tuple);
    if (ec) co_return;
    int answer;
    bool released;
    {
      std::lock_guard lock(mu_);
      requests_.push_back({std::string(request.method_string()), std::string(request.target()),
                           std::string(request[http::field::host]),
                           std::string(request[http::field::content_type]),
                           std::string(request[http::field::user_agent]),
                           std::string(request[http::field::content_length]), request.body(),
                           Clock::now()});
      changed_.notify_all();
      if (script_.empty()) {
        answer = then_;
      } else {
        answer = script_.front();
        script_.pop_front();
      }
      released = released_;
    }
    if (answer == kHold) {
      // Plain connections only: a TLS stream cannot be read by two.
      if (!tls_) asio::co_spawn(listener_.context(), WatchForClose(c), asio::detached);
      if (!released) co_await release_.async_wait(use_tuple);
      answer = 200;
    }
    c->answered = true;
    http::response<http::string_body> response;
    response.result(static_cast<unsigned>(answer));
    response.version(11);
    response.set(http::field::content_type, "text/plain");
    response.set(http::field::connection, "close");
    response.body() = StrCat("answer ", answer);
    response.prepare_payload();
    co_await http::async_write(stream, response, use_tuple);
    boost::system::error_code ignored;
    c->socket.shutdown(tcp::socket::shutdown_both, ignored);
    c->socket.close(ignored);
  }

  const std::shared_ptr<ssl::context> tls_;
  testing::LoopbackListener listener_;
  asio::steady_timer release_;  // cancelled by Release()

  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::deque<int> script_;
  int then_ = 200;
  bool released_ = false;
  std::vector<Request> requests_;
  size_t abandoned_ = 0;
};

// A port on 127.0.0.1 that nothing listens on (it was free a moment ago).
uint16_t ClosedPort() {
  asio::io_context ioc;
  tcp::acceptor acceptor(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return acceptor.local_endpoint().port();
}

// Options for tests: quick retries.
WebhookOptions FastOptions(std::vector<std::string> urls) {
  WebhookOptions options;
  options.urls = std::move(urls);
  options.timeout = milliseconds(10000);
  options.initial_backoff = milliseconds(10);
  options.max_backoff = milliseconds(40);
  return options;
}

std::unique_ptr<WebhookNotifier> StartOrDie(WebhookOptions options) {
  auto notifier = WebhookNotifier::Start(std::move(options));
  EXPECT_TRUE(notifier.ok()) << notifier.status();
  return notifier.ok() ? std::move(*notifier) : nullptr;
}

// The receiver gets a POST with the body byte for byte and the headers a
// webhook receiver relies on.
TEST(WebhookNotifierTest, PostsTheExactBodyWithHeaders) {
  Receiver receiver;
  ASSERT_TRUE(receiver.listening());
  auto notifier = StartOrDie(FastOptions({receiver.Url("/hooks/muster?token=a%20b")}));
  ASSERT_NE(notifier, nullptr);
  const std::string body =
      R"({"type":"health","instance":"web-1","health":"critical","note":"\"q\" \u00fc ü"})";
  notifier->Notify(body);
  ASSERT_TRUE(receiver.WaitForRequests(1));
  const Receiver::Request r = receiver.requests().at(0);
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/hooks/muster?token=a%20b");
  EXPECT_EQ(r.host, receiver.Url("").substr(7));  // 127.0.0.1:PORT
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.user_agent, "musterd-webhook");
  EXPECT_EQ(r.content_length, StrCat(body.size()));
  EXPECT_EQ(r.body, body);
  ASSERT_TRUE(WaitUntil([&] { return notifier->stats().delivered == 1; }))
      << Describe(notifier->stats());
  const auto stats = notifier->stats();
  EXPECT_EQ(stats.failed, 0u);
  EXPECT_EQ(stats.retries, 0u);
  EXPECT_EQ(stats.queued, 0u);
}

// Events reach a URL in the order they were notified.
TEST(WebhookNotifierTest, DeliversInOrder) {
  Receiver receiver;
  ASSERT_TRUE(receiver.listening());
  auto notifier = StartOrDie(FastOptions({receiver.Url()}));
  ASSERT_NE(notifier, nullptr);
  std::vector<std::string> sent;
  for (int i = 0; i < 50; ++i) {
    sent.push_back(StrCat(R"({"seq":)", i, "}"));
    notifier->Notify(sent.back());
  }
  ASSERT_TRUE(receiver.WaitForRequests(50));
  EXPECT_EQ(receiver.bodies(), sent);
  ASSERT_TRUE(WaitUntil([&] { return notifier->stats().delivered == 50; }))
      << Describe(notifier->stats());
}

// 5xx, 429 and 408 are retried (the same event again) until a 2xx.
TEST(WebhookNotifierTest, RetriesServerErrorsThenDelivers) {
  Receiver receiver;
  ASSERT_TRUE(receiver.listening());
  receiver.Script({500, 503, 429, 408});
  auto notifier = StartOrDie(FastOptions({receiver.Url()}));
  ASSERT_NE(notifier, nullptr);
  notifier->Notify("e0");
  ASSERT_TRUE(WaitUntil([&] { return notifier->stats().delivered == 1; }))
      << Describe(notifier->stats());
  EXPECT_THAT(receiver.bodies(), ElementsAre("e0", "e0", "e0", "e0", "e0"));
  const auto stats = notifier->stats();
  EXPECT_EQ(stats.retries, 4u);
  EXPECT_EQ(stats.failed, 0u);
}

// After `attempts` tries the event is failed and the next one goes out.
TEST(WebhookNotifierTest, GivesUpAfterAttempts) {
  Receiver receiver;
  ASSERT_TRUE(receiver.listening());
  receiver.Script({500, 500, 500});
  auto options = FastOptions({receiver.Url()});
  options.attempts = 3;
  auto notifier = StartOrDie(options);
  ASSERT_NE(notifier, nullptr);
  notifier->Notify("e0");
  notifier->Notify("e1");
  ASSERT_TRUE(WaitUntil([&] { return notifier->stats().delivered == 1; }))
      << Describe(notifier->stats());
  EXPECT_THAT(receiver.bodies(), ElementsAre("e0", "e0", "e0", "e1"));
  const auto stats = notifier->stats();
  EXPECT_EQ(stats.failed, 1u);
  EXPECT_EQ(stats.retries, 2u);
}

// A 4xx other than 408/429 is final: no retry, the next event goes out.
TEST(WebhookNotifierTest, ClientErrorIsNotRetried) {
  Receiver receiver;
  ASSERT_TRUE(receiver.listening());
  receiver.Script({400, 404});
  auto notifier = StartOrDie(FastOptions({receiver.Url()}));
  ASSERT_NE(notifier, nullptr);
  notifier->Notify("e0");
  notifier->Notify("e1");
  notifier->Notify("e2");
  ASSERT_TRUE(WaitUntil([&] { return notifier->stats().delivered == 1; }))
      << Describe(notifier->stats());
  EXPECT_THAT(receiver.bodies(), ElementsAre("e0", "e1", "e2"));
  const auto stats = notifier->stats();
  EXPECT_EQ(stats.failed, 2u);
  EXPECT_EQ(stats.retries, 0u);
}

// A URL nobody listens on (retrying with long backoffs) and one that never
// answers do not hold up a live URL: it gets every event while the other two
// are still on their first.
TEST(WebhookNotifierTest, DeadAndHungUrlsDoNotDelayALiveOne) {
  Receiver hung;
  Receiver live;
  ASSERT_TRUE(hung.listening());
  ASSERT_TRUE(live.listening());
  hung.Script({}, Receiver::kHold);
  auto options = FastOptions(
      {StrCat("http://127.0.0.1:", ClosedPort(), "/hook"), hung.Url(), live.Url()});
  // The dead URL's first event alone would take over a minute to fail.
  options.attempts = 10;
  options.initial_backoff = milliseconds(1000);
  options.max_backoff = milliseconds(30000);
  options.timeout = milliseconds(60000);
  auto notifier = StartOrDie(options);
  ASSERT_NE(notifier, nullptr);
  for (int i = 0; i < 5; ++i) notifier->Notify(StrCat("e", i));
  ASSERT_TRUE(live.WaitForRequests(5));
  EXPECT_THAT(live.bodies(), ElementsAre("e0", "e1", "e2", "e3", "e4"));
  ASSERT_TRUE(WaitUntil([&] { return notifier->stats().delivered == 5; }))
      << Describe(notifier->stats());
  const auto stats = notifier->stats();
  EXPECT_EQ(stats.failed, 0u) << "the dead or hung URL gave up already: " << Describe(stats);
  // e1..e4 wait for each of the two.
  EXPECT_EQ(stats.queued, 8u) << Describe(stats);
  // The hung receiver holds e0; under load its request may still be on the
  // way when the live one has all five (seen once in make test).
  ASSERT_TRUE(hung.WaitForRequests(1));
  EXPECT_THAT(hung.bodies(), ElementsAre("e0"));
  // The dead URL is retrying.
  EXPECT_TRUE(WaitUntil([&] { return notifier->stats().retries >= 1; }))
      << Describe(notifier->stats());
}

// While the receiver hangs, Notify still returns at once (it does no I/O);
// the attempt times out, its connection is closed and the event is tried
// again.
TEST(WebhookNotifierTest, HungReceiverTimesOutAndNotifyStaysQuick) {
  Receiver receiver;
  ASSERT_TRUE(receiver.listening());
  receiver.Script({}, Receiver::kHold);
  auto options = FastOptions({receiver.Url()});
  options.timeout = milliseconds(300);
  options.attempts = 2;
  auto notifier = StartOrDie(options);
  ASSERT_NE(notifier, nullptr);
  notifier->Notify("e0");
  ASSERT_TRUE(receiver.WaitForRequests(1));

  const auto start = Clock::now();
  for (int i = 1; i <= 1000; ++i) notifier->Notify(StrCat("e", i));
  const auto took = Clock::now() - start;
  // Far more than 1000 pushes onto a queue need; far less than the timeout
  // times the events a Notify that waited for the network would take.
  EXPECT_LT(took, std::chrono::seconds(1));

  // The first attempt of e0 timed out and was abandoned; e0 was tried again.
  ASSERT_TRUE(receiver.WaitForRequests(2));
  ASSERT_TRUE(receiver.WaitForAbandoned(1));
  const auto requests = receiver.requests();
  EXPECT_EQ(requests[1].body, "e0");
  EXPECT_GE(requests[1].at - requests[0].at, milliseconds(200));
  ASSERT_TRUE(WaitUntil([&] { return notifier->stats().failed >= 1; }))
      << Describe(notifier->stats());
  const auto stats = notifier->stats();
  EXPECT_GE(stats.retries, 1u);
  EXPECT_EQ(stats.delivered, 0u);
  EXPECT_EQ(stats.dropped, 0u);
}

// With queue_limit 3 and one event in delivery, nine more leave the newest
// three queued: six, the oldest waiting ones, are dropped. The event in
// delivery is not part of the queue.
TEST(WebhookNotifierTest, FullQueueDropsTheOldest) {
  Receiver receiver;
  ASSERT_TRUE(receiver.listening());
  receiver.Script({Receiver::kHold});
  auto options = FastOptions({receiver.Url()});
  options.queue_limit = 3;
  options.attempts = 1;
  options.timeout = milliseconds(60000);
  auto notifier = StartOrDie(options);
  ASSERT_NE(notifier, nullptr);
  notifier->Notify("e0");
  ASSERT_TRUE(receiver.WaitForRequests(1));
  for (int i = 1; i < 10; ++i) notifier->Notify(StrCat("e", i));
  auto stats = notifier->stats();
  EXPECT_EQ(stats.dropped, 6u) << Describe(stats);
  EXPECT_EQ(stats.queued, 3u) << Describe(stats);

  receiver.Release();
  ASSERT_TRUE(WaitUntil([&] { return notifier->stats().delivered == 4; }))
      << Describe(notifier->stats());
  EXPECT_THAT(receiver.bodies(), ElementsAre("e0", "e7", "e8", "e9"));
  stats = notifier->stats();
  EXPECT_EQ(stats.dropped, 6u);
  EXPECT_EQ(stats.failed, 0u);
  EXPECT_EQ(stats.queued, 0u);
}

// Stop does not wait for a receiver that never answers: it closes the
// connection in flight, abandons the queue, and later Notify calls do
// nothing.
TEST(WebhookNotifierTest, StopWithHungReceiverReturnsPromptly) {
  Receiver receiver;
  ASSERT_TRUE(receiver.listening());
  receiver.Script({}, Receiver::kHold);
  auto options = FastOptions({receiver.Url()});
  options.timeout = milliseconds(60000);
  auto notifier = StartOrDie(options);
  ASSERT_NE(notifier, nullptr);
  notifier->Notify("e0");
  ASSERT_TRUE(receiver.WaitForRequests(1));
  notifier->Notify("e1");
  notifier->Notify("e2");
  EXPECT_EQ(notifier->stats().queued, 2u);

  const auto start = Clock::now();
  notifier->Stop();
  // Far below the 60 s attempt timeout.
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  EXPECT_TRUE(receiver.WaitForAbandoned(1));
  EXPECT_EQ(notifier->stats().queued, 0u);

  notifier->Stop();  // idempotent
  notifier->Notify("e3");
  const auto stats = notifier->stats();
  EXPECT_EQ(stats.queued, 0u);
  EXPECT_EQ(stats.delivered, 0u);
  EXPECT_EQ(receiver.requests().size(), 1u);
}

// Start names the URL it cannot use.
TEST(WebhookNotifierTest, StartRejectsInvalidUrls) {
  const std::vector<std::string> bad = {
      "",
      "example.com/hook",
      "ftp://127.0.0.1/hook",
      "http://",
      "http:///hook",
      "http://127.0.0.1:0/hook",
      "http://127.0.0.1:65536/hook",
      "http://127.0.0.1:/hook",
      "http://user:secret@127.0.0.1/hook",
      "http://bad host/hook",
      "http://127.0.0.1/a path",
      "http://::1/hook",
      "http://[::1/hook",
      "http://127.0.0.1/hook\r\nX-Evil: 1",
  };
  for (const std::string& url : bad) {
    WebhookOptions options;
    options.urls = {"http://127.0.0.1:8080/ok", url};
    EXPECT_THAT(WebhookNotifier::Start(options),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(StrCat("\"", url, "\""))))
        << url;
  }
  WebhookOptions twice;
  twice.urls = {"http://127.0.0.1:8080/a", "http://127.0.0.1:8080/a"};
  EXPECT_THAT(WebhookNotifier::Start(twice),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("twice")));
}

// Names, IP addresses (v4 and v6), default ports, queries and https parse;
// Start makes no connection.
TEST(WebhookNotifierTest, StartAcceptsValidUrls) {
  WebhookOptions options;
  options.urls = {"http://localhost/hook",        "https://localhost:8443/a/b?token=x",
                  "http://[::1]:9/x",             "HTTP://127.0.0.1:8080",
                  "http://127.0.0.1?only=query", "https://[::1]/"};
  auto notifier = WebhookNotifier::Start(options);
  ASSERT_TRUE(notifier.ok()) << notifier.status();
  (*notifier)->Stop();
  // No URLs at all: a notifier that does nothing.
  auto empty = WebhookNotifier::Start(WebhookOptions{});
  ASSERT_TRUE(empty.ok()) << empty.status();
  (*empty)->Notify("{}");
  EXPECT_EQ((*empty)->stats().queued, 0u);
}

TEST(WebhookNotifierTest, StartRejectsInvalidOptions) {
  WebhookOptions options;
  options.urls = {"http://127.0.0.1:8080/hook"};
  options.attempts = 0;
  EXPECT_THAT(WebhookNotifier::Start(options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("attempts")));
  options.attempts = 1;
  options.queue_limit = 0;
  EXPECT_THAT(WebhookNotifier::Start(options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("queue")));
  options.queue_limit = 1;
  options.timeout = milliseconds(0);
  EXPECT_THAT(WebhookNotifier::Start(options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("timeout")));
  options.timeout = milliseconds(1000);
  options.initial_backoff = milliseconds(2000);
  options.max_backoff = milliseconds(1000);
  EXPECT_THAT(WebhookNotifier::Start(options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("backoff")));
}

// ---------------------------------------------------------------------------
// https, with a self-signed certificate for 127.0.0.1 made at test time.

class WebhookNotifierTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cert = testing::SelfSignedCert::Make("muster-webhook-tls");
    if (absl::IsFailedPrecondition(cert.status())) GTEST_SKIP() << cert.status();
    ASSERT_TRUE(cert.ok()) << cert.status();
    cert_.emplace(*std::move(cert));
    receiver_.emplace(cert_->ServerContext());
    ASSERT_TRUE(receiver_->listening());
  }
  void TearDown() override { receiver_.reset(); }

  std::optional<testing::SelfSignedCert> cert_;
  std::optional<Receiver> receiver_;
};

// With tls_skip_verify the self-signed receiver gets the event.
TEST_F(WebhookNotifierTlsTest, SkipVerifyDelivers) {
  auto options = FastOptions({receiver_->Url()});
  options.tls_skip_verify = true;
  auto notifier = StartOrDie(options);
  ASSERT_NE(notifier, nullptr);
  notifier->Notify(R"({"tls":true})");
  ASSERT_TRUE(WaitUntil([&] { return notifier->stats().delivered == 1; }))
      << Describe(notifier->stats());
  EXPECT_THAT(receiver_->bodies(), ElementsAre(R"({"tls":true})"));
}

// Without it, the certificate (not signed by a system CA) is refused: the
// request is never sent and the event fails after its attempts.
TEST_F(WebhookNotifierTlsTest, VerifiesTheCertificate) {
  auto options = FastOptions({receiver_->Url()});
  options.attempts = 2;
  auto notifier = StartOrDie(options);
  ASSERT_NE(notifier, nullptr);
  notifier->Notify(R"({"tls":true})");
  ASSERT_TRUE(WaitUntil([&] { return notifier->stats().failed == 1; }))
      << Describe(notifier->stats());
  const auto stats = notifier->stats();
  EXPECT_EQ(stats.delivered, 0u);
  EXPECT_EQ(stats.retries, 1u);
  EXPECT_TRUE(receiver_->requests().empty());
}

}  // namespace
}  // namespace muster
