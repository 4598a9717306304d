// The HTTP check: one request per run (outbound::HttpCall, on the I/O
// threads), judged by the status alone. 2xx is passing, 429 (Too Many
// Requests) is warning, any other status and any failure to get an answer is
// critical. Redirects are not followed: a check URL that redirects is a
// configuration to fix, and following it could take musterd anywhere.
//
// The whole run shares the check's timeout. When it passes, or on Cancel,
// the result is reported at once and the connection closed (a name lookup
// ends on its own later: Asio cannot interrupt one). The first
// kMaxBodyBytes of the body go into the output, for people reading it.
#include <chrono>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "core/duration.h"
#include "core/strings.h"
#include "server/async_util.h"
#include "server/health/probe.h"
#include "server/health/strand_probe.h"
#include "server/outbound/http_call.h"
#include "server/outbound/http_url.h"
#include "server/outbound/tls_client.h"

namespace muster {
namespace {

constexpr size_t kMaxBodyBytes = 4096;
constexpr std::string_view kUserAgent = "musterd-health-check";

absl::Status BadTarget(const Check& check, std::string_view why) {
  return absl::InvalidArgumentError(StrCat("check \"", check.id, "\": ", why));
}

class HttpProbe;

// One run: lives until its coroutine ends; everything in it is touched only
// on `strand`.
struct HttpRun {
  HttpRun(std::shared_ptr<HttpProbe> p, asio::any_io_executor ex, std::chrono::milliseconds t,
          ProbeCallback d);

  // Reports `result` unless a result went out already, and ends the
  // exchange. On the strand.
  void Finish(ProbeResult result) {
    if (finished) return;
    finished = true;
    call->Close();
    result.output = BoundedOutput(std::move(result.output), "HTTP check failed");
    std::move(done)(std::move(result));
  }

  // Ends the run now (Cancel) with a critical `reason`. On the strand.
  void Stop(std::string reason) { Finish({Health::kCritical, std::move(reason)}); }

  const std::shared_ptr<HttpProbe> probe;  // kept alive while the run is in flight
  const asio::strand<asio::any_io_executor> strand;
  const std::chrono::milliseconds timeout;
  ProbeCallback done;
  std::shared_ptr<outbound::HttpCall> call;
  bool finished = false;  // `done` ran
};

class HttpProbe final : public StrandProbe<HttpProbe, HttpRun> {
 public:
  HttpProbe(outbound::HttpUrl url, outbound::Request request,
            std::shared_ptr<const outbound::TlsClient> tls, asio::any_io_executor executor)
      : StrandProbe(std::move(executor)),
        url_(std::move(url)),
        request_(std::move(request)),
        tls_(std::move(tls)) {}

 private:
  friend class StrandProbe<HttpProbe, HttpRun>;
  friend struct HttpRun;
  static awaitable<void> Go(std::shared_ptr<HttpRun> run);

  // Constant after construction.
  const outbound::HttpUrl url_;
  const outbound::Request request_;  // copied by each run
  const std::shared_ptr<const outbound::TlsClient> tls_;  // null for http://
};

HttpRun::HttpRun(std::shared_ptr<HttpProbe> p, asio::any_io_executor ex,
                 std::chrono::milliseconds t, ProbeCallback d)
    : probe(std::move(p)),
      strand(std::move(ex)),
      timeout(t),
      done(std::move(d)),
      call(outbound::HttpCall::Make(strand, probe->url_, probe->tls_)) {}

ProbeResult Judge(const outbound::HttpAnswer& answer) {
  ProbeResult result;
  result.output = answer.StatusLine();
  const unsigned code = answer.status;
  if (code >= 200 && code < 300) {
    result.status = Health::kPassing;
  } else if (code == 429) {
    result.status = Health::kWarning;
  } else {
    result.status = Health::kCritical;
    if (code >= 300 && code < 400) result.output += " (redirects are not followed)";
  }
  if (!answer.body.empty()) StrAppend(&result.output, "\n", answer.body);
  return result;
}

awaitable<void> HttpProbe::Go(std::shared_ptr<HttpRun> run) {
  outbound::ExchangeOptions options;
  options.timeout = run->timeout;
  options.body_bytes = [](unsigned) { return kMaxBodyBytes; };
  ProbeResult result;
  try {
    auto answer = co_await run->call->Run(run->probe->request_, std::move(options));
    if (!answer.ok()) {
      result = {Health::kCritical, std::string(MessageOf(answer.status()))};
    } else if (answer->body_cut_by_deadline) {
      // The check's timeout covers the body it shows.
      result = {Health::kCritical, StrCat("timed out after ", FormatDuration(run->timeout), " (",
                                          run->call->step(), ")")};
    } else {
      result = Judge(*answer);
    }
  } catch (const std::exception& e) {
    result = {Health::kCritical, StrCat("internal error: ", e.what())};
  }
  run->Finish(std::move(result));
}

}  // namespace

absl::StatusOr<std::shared_ptr<Probe>> MakeHttpProbe(const Check& check, const Instance& instance,
                                                     const ProbeEnvironment& env) {
  std::string text = check.target;
  if (text.empty() || text.starts_with('/')) {
    text = StrCat("http://", instance.address, text.empty() ? "/" : text);
  }
  auto url = outbound::ParseHttpUrl(text);
  if (!url.ok()) {
    if (text.find("://") == std::string::npos) {
      return BadTarget(check, "an http target is a path (\"/health\") or an http:// or https:// URL");
    }
    return BadTarget(check, MessageOf(url.status()));
  }

  const std::string method = check.method.empty() ? "GET" : check.method;
  outbound::Request request = outbound::NewRequest(*url, method, kUserAgent);
  request.set(boost::beast::http::field::accept, "*/*");
  // The check's own headers win (a Host header for a virtual host, say).
  for (const auto& [name, value] : check.headers) request.set(name, value);

  std::shared_ptr<const outbound::TlsClient> tls;
  if (url->tls) {
    outbound::TlsClientOptions tls_options;
    tls_options.verify = !check.tls_skip_verify;
    auto made = outbound::TlsClient::Make(tls_options);
    if (!made.ok()) {
      return absl::FailedPreconditionError(
          StrCat("check \"", check.id, "\": ", MessageOf(made.status())));
    }
    tls = *std::move(made);
  }
  return std::make_shared<HttpProbe>(*std::move(url), std::move(request), std::move(tls),
                                     env.executor);
}

}  // namespace muster
