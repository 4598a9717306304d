// The HTTP check: one request per run (Beast, on the I/O threads), judged by
// the status alone. 2xx is passing, 429 (Too Many Requests) is warning, any
// other status and any failure to get an answer is critical. Redirects are
// not followed: a check URL that redirects is a configuration to fix, and
// following it could take musterd anywhere.
//
// A run: resolve, connect, (TLS handshake,) write the request, read the
// status and at most kMaxBodyBytes of the body for the output, close. The
// whole run shares one deadline; when it passes, or on Cancel, the result is
// reported at once and the socket closed, which ends whichever step is
// waiting (a name lookup ends on its own: Asio cannot interrupt one).
#include <chrono>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "absl/base/thread_annotations.h"
#include "core/duration.h"
#include "core/strings.h"
#include "core/validation.h"
#include "server/async_util.h"
#include "server/health/probe.h"
#include "server/health/strand_probe.h"

namespace muster {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

// The body is read only for the output; the rest is left unread.
constexpr size_t kMaxBodyBytes = 4096;
constexpr std::string_view kUserAgent = "musterd-health-check";

// Where a check's requests go, parsed once when the probe is made.
struct HttpTarget {
  bool tls = false;
  std::string host;       // name or IP address, without IPv6 brackets
  std::string port;       // for the resolver
  uint16_t port_number = 0;
  std::string authority;  // host[:port] as written: the Host header
  std::string path;       // origin-form request target, "/..."
  std::string endpoint;   // host:port for messages ("[::1]:8443")
};

absl::Status BadTarget(const Check& check, std::string_view why) {
  return absl::InvalidArgumentError(StrCat("check \"", check.id, "\": ", why));
}

absl::StatusOr<HttpTarget> ParseTarget(const Check& check, const Instance& instance) {
  std::string url = check.target;
  if (url.empty() || url.starts_with('/')) {
    url = StrCat("http://", instance.address, url.empty() ? "/" : url);
  }
  HttpTarget t;
  std::string_view rest = url;
  if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else if (rest.starts_with("https://")) {
    rest.remove_prefix(8);
    t.tls = true;
  } else {
    return BadTarget(check, "an http target is a path (\"/health\") or an http:// or https:// URL");
  }
  const size_t authority_end = rest.find_first_of("/?#");
  t.authority = std::string(rest.substr(0, authority_end));
  std::string_view path = authority_end == std::string_view::npos ? "" : rest.substr(authority_end);
  path = path.substr(0, path.find('#'));  // a fragment is never sent
  t.path = path.starts_with('/') ? std::string(path) : StrCat("/", path);
  for (char c : t.path) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return BadTarget(check, "the URL path has spaces or control characters");
    }
  }
  if (t.authority.find('@') != std::string::npos) {
    return BadTarget(check, "user information in the URL is not supported");
  }
  // "host", "host:port", "[v6]" or "[v6]:port".
  const bool has_port = !t.authority.ends_with(']') && t.authority.find(':') != std::string::npos;
  auto host_port =
      SplitHostPort(has_port ? t.authority : StrCat(t.authority, t.tls ? ":443" : ":80"));
  if (!host_port.ok()) return BadTarget(check, MessageOf(host_port.status()));
  if (host_port->second == 0) return BadTarget(check, "port 0 in the URL");
  t.host = host_port->first;
  t.port_number = host_port->second;
  t.port = StrCat(t.port_number);
  const bool v6 = t.host.find(':') != std::string::npos;
  t.endpoint = StrCat(v6 ? "[" : "", t.host, v6 ? "]" : "", ":", t.port);
  return t;
}

// A TLS handshake error, with OpenSSL's reason for rejecting the peer's
// certificate when that was the cause ("certificate verify failed
// (self-signed certificate)").
std::string HandshakeError(const error_code& ec, SSL* ssl) {
  std::string message = ec.message();
  const long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) StrAppend(&message, " (", X509_verify_cert_error_string(verify), ")");
  return message;
}

class HttpProbe;

// One run: lives until its coroutine ends; everything in it is touched only
// on `strand`.
struct HttpRun {
  HttpRun(std::shared_ptr<HttpProbe> p, asio::any_io_executor ex, std::chrono::milliseconds t,
          ProbeCallback d)
      : probe(std::move(p)),
        strand(std::move(ex)),
        timeout(t),
        done(std::move(d)),
        resolver(strand),
        socket(strand),
        watchdog(strand) {}

  tcp::socket& Socket() { return tls ? tls->next_layer() : socket; }

  // Reports `result` unless a result went out already, and releases the
  // connection. On the strand.
  void Finish(ProbeResult result) {
    if (finished) return;
    finished = true;
    watchdog.cancel();
    resolver.cancel();
    error_code ignored;
    Socket().close(ignored);
    result.output = BoundedOutput(std::move(result.output), "HTTP check failed");
    std::move(done)(std::move(result));
  }

  // Ends the run now (timeout, Cancel) with a critical `reason`. The step in
  // progress fails soon after and the coroutine ends quietly; `done` does
  // not wait for it (a name lookup cannot be interrupted). On the strand.
  void Stop(std::string reason) { Finish({Health::kCritical, std::move(reason)}); }

  const std::shared_ptr<HttpProbe> probe;  // kept alive while the run is in flight
  const asio::strand<asio::any_io_executor> strand;
  const std::chrono::milliseconds timeout;
  ProbeCallback done;
  tcp::resolver resolver;
  tcp::socket socket;                        // until the TLS stream takes it
  std::optional<ssl::stream<tcp::socket>> tls;
  asio::steady_timer watchdog;
  std::string step;  // what the run waits for, for a timeout message
  bool finished = false;  // `done` ran
};

class HttpProbe final : public StrandProbe<HttpProbe, HttpRun> {
 public:
  HttpProbe(HttpTarget target, http::request<http::empty_body> request,
            std::shared_ptr<ssl::context> tls_context, bool verify, asio::any_io_executor executor)
      : StrandProbe(std::move(executor)),
        target_(std::move(target)),
        request_(std::move(request)),
        tls_context_(std::move(tls_context)),
        verify_(verify) {}

 private:
  friend class StrandProbe<HttpProbe, HttpRun>;
  static awaitable<void> Go(std::shared_ptr<HttpRun> run);
  static awaitable<ProbeResult> Attempt(HttpRun& run);
  template <typename Stream>
  static awaitable<ProbeResult> Exchange(HttpRun& run, Stream& stream);
  void SetUpTls(HttpRun& run);

  // Constant after construction.
  const HttpTarget target_;
  const http::request<http::empty_body> request_;  // copied by each run
  const std::shared_ptr<ssl::context> tls_context_;  // null for http://
  const bool verify_;
};

awaitable<void> HttpProbe::Go(std::shared_ptr<HttpRun> run) {
  run->watchdog.expires_after(run->timeout);
  run->watchdog.async_wait([run](error_code ec) {
    if (!ec) run->Stop(StrCat("timed out after ", FormatDuration(run->timeout), " (", run->step, ")"));
  });
  ProbeResult result;
  try {
    result = co_await Attempt(*run);
  } catch (const std::exception& e) {
    result = {Health::kCritical, StrCat("internal error: ", e.what())};
  }
  run->Finish(std::move(result));
}

// After each step: a run that was stopped meanwhile has reported already.
awaitable<ProbeResult> HttpProbe::Attempt(HttpRun& run) {
  const HttpTarget& t = run.probe->target_;
  if (run.finished) co_return ProbeResult{};
  tcp::resolver::results_type endpoints;
  error_code not_ip;
  const asio::ip::address address = asio::ip::make_address(t.host, not_ip);
  if (!not_ip) {
    // An IP address needs no lookup (and no turn on Asio's one resolver thread).
    endpoints = tcp::resolver::results_type::create(tcp::endpoint(address, t.port_number),
                                                    t.host, t.port);
  } else {
    run.step = StrCat("resolving ", t.host);
    auto [resolve_error, found] = co_await run.resolver.async_resolve(t.host, t.port, use_tuple);
    if (run.finished) co_return ProbeResult{};
    if (resolve_error) {
      co_return ProbeResult{Health::kCritical,
                            StrCat("resolve ", t.host, ": ", resolve_error.message())};
    }
    endpoints = std::move(found);
  }

  run.step = StrCat("connecting to ", t.endpoint);
  auto [connect_error, endpoint] = co_await asio::async_connect(run.socket, endpoints, use_tuple);
  if (run.finished) co_return ProbeResult{};
  if (connect_error) {
    co_return ProbeResult{Health::kCritical,
                          StrCat("connect to ", t.endpoint, ": ", connect_error.message())};
  }
  error_code ignored;
  run.socket.set_option(tcp::no_delay(true), ignored);
  if (!t.tls) co_return co_await Exchange(run, run.socket);

  run.step = StrCat("TLS handshake with ", t.endpoint);
  run.probe->SetUpTls(run);
  auto [handshake_error] = co_await run.tls->async_handshake(ssl::stream_base::client, use_tuple);
  if (run.finished) co_return ProbeResult{};
  if (handshake_error) {
    co_return ProbeResult{Health::kCritical,
                          StrCat("TLS handshake with ", t.endpoint, ": ",
                                 HandshakeError(handshake_error, run.tls->native_handle()))};
  }
  co_return co_await Exchange(run, *run.tls);
}

void HttpProbe::SetUpTls(HttpRun& run) {
  run.tls.emplace(std::move(run.socket), *tls_context_);
  SSL* ssl = run.tls->native_handle();
  error_code not_ip;
  asio::ip::make_address(target_.host, not_ip);
  // SNI is for names only (RFC 6066 forbids IP literals).
  if (not_ip) SSL_set_tlsext_host_name(ssl, target_.host.c_str());
  if (!verify_) {
    run.tls->set_verify_mode(ssl::verify_none);
    return;
  }
  run.tls->set_verify_mode(ssl::verify_peer);
  // OpenSSL checks the name (or the IP address) during the handshake, so a
  // mismatch is reported like any other verify failure ("hostname mismatch").
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  if (not_ip) {
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    X509_VERIFY_PARAM_set1_host(param, target_.host.c_str(), target_.host.size());
  } else {
    X509_VERIFY_PARAM_set1_ip_asc(param, target_.host.c_str());
  }
}

template <typename Stream>
awaitable<ProbeResult> HttpProbe::Exchange(HttpRun& run, Stream& stream) {
  const HttpTarget& t = run.probe->target_;
  http::request<http::empty_body> request = run.probe->request_;
  run.step = StrCat("sending the request to ", t.endpoint);
  auto [write_error, written] = co_await http::async_write(stream, request, use_tuple);
  if (run.finished) co_return ProbeResult{};
  if (write_error) {
    co_return ProbeResult{Health::kCritical,
                          StrCat("HTTP request to ", t.endpoint, ": ", write_error.message())};
  }

  run.step = StrCat("waiting for the answer of ", t.endpoint);
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  // The body is read in part, so its declared size does not matter.
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  if (request.method() == http::verb::head) parser.skip(true);
  auto [read_error, header_bytes] = co_await http::async_read_header(stream, buffer, parser, use_tuple);
  if (run.finished) co_return ProbeResult{};
  if (read_error) {
    co_return ProbeResult{Health::kCritical,
                          StrCat("HTTP answer from ", t.endpoint, ": ", read_error.message())};
  }

  // The first part of the body, for people reading the output. The status
  // is known now; a body that breaks off does not change the result.
  run.step = StrCat("reading the body from ", t.endpoint);
  std::string body(kMaxBodyBytes, '\0');
  size_t got = 0;
  while (!parser.is_done() && got < body.size()) {
    parser.get().body().data = body.data() + got;
    parser.get().body().size = body.size() - got;
    auto [body_error, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
    got = body.size() - parser.get().body().size;
    if (run.finished) co_return ProbeResult{};
    if (body_error && body_error != http::error::need_buffer) break;
  }
  body.resize(got);

  const auto& response = parser.get();
  const unsigned code = response.result_int();
  std::string_view reason = response.reason();
  if (reason.empty()) reason = http::obsolete_reason(response.result());
  ProbeResult result;
  result.output = StrCat("HTTP ", code, " ", reason);
  if (code >= 200 && code < 300) {
    result.status = Health::kPassing;
  } else if (code == 429) {
    result.status = Health::kWarning;
  } else {
    result.status = Health::kCritical;
    if (code >= 300 && code < 400) result.output += " (redirects are not followed)";
  }
  if (!body.empty()) StrAppend(&result.output, "\n", body);
  co_return result;
}

}  // namespace

absl::StatusOr<std::shared_ptr<Probe>> MakeHttpProbe(const Check& check, const Instance& instance,
                                                     const ProbeEnvironment& env) {
  auto target = ParseTarget(check, instance);
  if (!target.ok()) return target.status();

  http::request<http::empty_body> request;
  const std::string method = check.method.empty() ? "GET" : check.method;
  if (http::verb verb = http::string_to_verb(method); verb != http::verb::unknown) {
    request.method(verb);
  } else {
    request.method_string(method);
  }
  request.target(target->path);
  request.version(11);
  request.set(http::field::host, target->authority);
  request.set(http::field::user_agent, kUserAgent);
  request.set(http::field::accept, "*/*");
  // The check's own headers win (a Host header for a virtual host, say).
  for (const auto& [name, value] : check.headers) request.set(name, value);
  // One request per connection: the server may close once it answered.
  request.set(http::field::connection, "close");
  request.prepare_payload();

  std::shared_ptr<ssl::context> tls_context;
  if (target->tls) {
    tls_context = std::make_shared<ssl::context>(ssl::context::tls_client);
    tls_context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                             ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                             ssl::context::no_tlsv1_1);
    if (!check.tls_skip_verify) {
      error_code ec;
      tls_context->set_default_verify_paths(ec);
      if (ec) {
        return absl::FailedPreconditionError(
            StrCat("check \"", check.id, "\": cannot load the system CA certificates: ",
                   ec.message()));
      }
    }
  }
  return std::make_shared<HttpProbe>(std::move(*target), std::move(request), std::move(tls_context),
                                     !check.tls_skip_verify, env.executor);
}

}  // namespace muster
