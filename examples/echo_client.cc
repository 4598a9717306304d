// echo_client: discovers the instances of the "echo" service through musterd
// and sends requests to them with client-side load balancing. A request that
// fails in transit (connection refused or reset, timeout, 5xx) is retried on
// another instance by muster::Caller, which also ejects instances that keep
// failing.
//
// Usage:
//   echo_client --registry 127.0.0.1:8470 --balancer round_robin --count 20 --interval 100ms
//
// Prints how many requests each instance answered and how many failed; exits
// 1 when any request failed after its retries, 2 on a usage error.
//
// Only the public SDK (<muster/muster.h>), Boost.Beast/Asio/JSON and CLI11.
#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "muster/muster.h"
#include "duration_flag.h"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using std::chrono::milliseconds;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

using example_flags::ParseDuration;

// One GET /echo?msg=MSG to `address` on a fresh connection, within `timeout`.
// Sets `answered_by` to the id in the answer. Transport failures and 5xx are
// Unavailable (or DeadlineExceeded): Caller retries them elsewhere.
absl::Status Echo(asio::io_context& ioc, const std::string& address, const std::string& msg,
                  milliseconds timeout, std::string& answered_by) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return absl::InvalidArgumentError("bad address " + address);
  std::string host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  const std::string port = address.substr(colon + 1);

  absl::Status result = absl::UnavailableError("not run");
  http::response<http::string_body> res;
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        tcp::resolver resolver(ioc);
        beast::tcp_stream stream(ioc);
        stream.expires_after(timeout);
        auto [rec, endpoints] = co_await resolver.async_resolve(host, port, use_tuple);
        if (rec) {
          result = absl::UnavailableError("resolve " + address + ": " + rec.message());
          co_return;
        }
        auto [cec, ep] = co_await stream.async_connect(endpoints, use_tuple);
        http::request<http::empty_body> req{http::verb::get, "/echo?msg=" + msg, 11};
        req.set(http::field::host, address);
        beast::error_code ec = cec;
        if (!ec) std::tie(ec, std::ignore) = co_await http::async_write(stream, req, use_tuple);
        beast::flat_buffer buffer;
        if (!ec) std::tie(ec, std::ignore) = co_await http::async_read(stream, buffer, res, use_tuple);
        if (ec == beast::error::timeout) {
          result = absl::DeadlineExceededError(address + ": no answer within " +
                                               std::to_string(timeout.count()) + " ms");
        } else if (ec) {
          result = absl::UnavailableError(address + ": " + ec.message());
        } else {
          result = absl::OkStatus();
        }
        beast::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
      },
      asio::detached);
  ioc.restart();
  ioc.run();
  if (!result.ok()) return result;

  if (res.result_int() >= 500) {
    return absl::UnavailableError(address + " answered HTTP " + std::to_string(res.result_int()));
  }
  if (res.result() != http::status::ok) {
    return absl::FailedPreconditionError(address + " answered HTTP " +
                                         std::to_string(res.result_int()));
  }
  boost::system::error_code jec;
  boost::json::value body = boost::json::parse(res.body(), jec);
  const boost::json::object* object = jec ? nullptr : body.if_object();
  if (object == nullptr || !object->contains("id") || !object->at("id").is_string() ||
      !object->contains("msg") || object->at("msg") != boost::json::value(msg)) {
    return absl::InternalError(address + " answered an unexpected body: " + res.body());
  }
  answered_by = std::string(object->at("id").as_string());
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"echo_client — calls the echo service through muster discovery"};
  std::string registry_address = "127.0.0.1:8470";
  std::string service = "echo";
  std::string balancer = "round_robin";
  int count = 10;
  std::string interval_text = "100ms";
  std::string timeout_text = "1s";
  int max_attempts = 3;
  bool verbose = false;
  app.add_option("--registry", registry_address, "musterd host:port")->capture_default_str();
  app.add_option("--service", service, "service to call")->capture_default_str();
  std::string policies;
  for (std::string_view p : muster::BalancerPolicies()) {
    policies += (policies.empty() ? "" : ", ") + std::string(p);
  }
  app.add_option("--balancer", balancer, "balancer policy: " + policies)->capture_default_str();
  app.add_option("--count", count, "requests to send")->capture_default_str()->check(CLI::Range(0, 10'000'000));
  app.add_option("--interval", interval_text, "pause between requests (e.g. 100ms, 1s)")
      ->capture_default_str();
  app.add_option("--timeout", timeout_text, "timeout of one attempt")->capture_default_str();
  app.add_option("--max-attempts", max_attempts, "attempts per request, each on another instance")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  app.add_flag("-v,--verbose", verbose, "print every request");
  CLI11_PARSE(app, argc, argv);
  const auto interval = ParseDuration(interval_text);
  const auto timeout = ParseDuration(timeout_text);
  if (!interval || !timeout) {
    std::cerr << "echo_client: --interval and --timeout take durations like 100ms or 2s\n";
    return 2;
  }

  muster::MusterRegistryOptions registry_options;
  registry_options.addresses = {registry_address};
  auto registry = muster::NewMusterRegistry(registry_options);
  if (!registry.ok()) {
    std::cerr << "echo_client: " << registry.status() << "\n";
    return 1;
  }
  muster::DiscoveryOptions discovery_options;
  discovery_options.balancer = balancer;
  muster::Discovery discovery(registry->get(), discovery_options);
  muster::CallPolicy policy;
  policy.max_attempts = max_attempts;
  muster::Caller caller(&discovery, policy);
  muster::ServiceQuery query;
  query.service = service;

  asio::io_context ioc(1);
  std::map<std::string, int> answered;  // instance id -> requests it answered
  int failed = 0;
  int attempts = 0;
  for (int i = 1; i <= count; ++i) {
    const std::string msg = "hello-" + std::to_string(i);
    std::string by;
    absl::Status s = caller.Call(query, [&](const muster::Instance& instance) {
      ++attempts;
      absl::Status a = Echo(ioc, instance.address, msg, *timeout, by);
      if (!a.ok() && verbose) std::cout << "  attempt on " << instance.id << " failed: " << a << "\n";
      return a;
    });
    if (s.ok()) {
      ++answered[by];
      if (verbose) std::cout << "request " << i << " ok " << by << std::endl;
    } else {
      ++failed;
      std::cout << "request " << i << " failed: " << s << std::endl;
    }
    if (i < count) std::this_thread::sleep_for(*interval);
  }

  std::cout << "echo_client: " << count << " requests to " << service << " with " << balancer
            << ": " << (count - failed) << " ok, " << failed << " failed, " << attempts
            << " attempts\n";
  for (const auto& [id, n] : answered) std::cout << "  " << id << ": " << n << "\n";
  std::cout.flush();
  return failed == 0 ? 0 : 1;
}
