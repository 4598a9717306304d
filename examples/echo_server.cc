// echo_server: a tiny HTTP service that registers itself with musterd and
// keeps itself registered with a muster::Heartbeater.
//
//   GET /echo?msg=hello  ->  200 {"id":"echo-1","msg":"hello"}
//   GET /healthz         ->  200 {"id":"echo-1"}
//
// Usage:
//   echo_server --registry 127.0.0.1:8470 --listen 127.0.0.1:0 --id echo-1
//
// It prints "echo_server <id> listening on <host:port>" once it serves and is
// registered (with the port actually bound), and deregisters on SIGINT or
// SIGTERM before it exits.
//
// Only the public SDK (<muster/muster.h>), Boost.Beast/Asio/JSON and CLI11.
#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <algorithm>
#include <csignal>
#include <cstdint>
#include <iostream>
#include <string>
#include <string_view>

#include "muster/muster.h"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The value of `name` in a query string ("a=1&msg=hi"), percent-decoded; ""
// when absent.
std::string QueryParam(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    std::string_view pair = query.substr(0, query.find('&'));
    query.remove_prefix(std::min(query.size(), pair.size() + 1));
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos || pair.substr(0, eq) != name) continue;
    std::string_view raw = pair.substr(eq + 1);
    std::string out;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '+') {
        out.push_back(' ');
      } else if (raw[i] == '%' && i + 2 < raw.size() && HexDigit(raw[i + 1]) >= 0 &&
                 HexDigit(raw[i + 2]) >= 0) {
        out.push_back(static_cast<char>(HexDigit(raw[i + 1]) * 16 + HexDigit(raw[i + 2])));
        i += 2;
      } else {
        out.push_back(raw[i]);
      }
    }
    return out;
  }
  return "";
}

http::response<http::string_body> Handle(const http::request<http::string_body>& req,
                                         const std::string& id) {
  std::string_view target = req.target();
  std::string_view path = target.substr(0, target.find('?'));
  std::string_view query =
      path.size() < target.size() ? target.substr(path.size() + 1) : std::string_view();
  http::response<http::string_body> res{http::status::ok, req.version()};
  res.set(http::field::content_type, "application/json");
  res.keep_alive(req.keep_alive());
  boost::json::object body{{"id", id}};
  if (req.method() != http::verb::get) {
    res.result(http::status::method_not_allowed);
    body["error"] = "only GET";
  } else if (path == "/echo") {
    body["msg"] = QueryParam(query, "msg");
  } else if (path != "/healthz") {
    res.result(http::status::not_found);
    body["error"] = "unknown path";
  }
  res.body() = boost::json::serialize(body) + "\n";
  res.prepare_payload();
  return res;
}

asio::awaitable<void> Session(tcp::socket socket, std::string id) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    http::request<http::string_body> req;
    stream.expires_after(std::chrono::seconds(60));
    auto [ec, n] = co_await http::async_read(stream, buffer, req, use_tuple);
    if (ec) break;
    auto res = Handle(req, id);
    auto [wec, wn] = co_await http::async_write(stream, res, use_tuple);
    if (wec || !res.keep_alive()) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

asio::awaitable<void> Accept(tcp::acceptor& acceptor, std::string id) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
    if (ec) {
      if (!acceptor.is_open()) co_return;
      continue;
    }
    asio::co_spawn(acceptor.get_executor(), Session(std::move(socket), id), asio::detached);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"echo_server — an HTTP echo service that registers itself with musterd"};
  std::string registry_address = "127.0.0.1:8470";
  std::string listen = "127.0.0.1:0";
  std::string id;
  std::string service = "echo";
  uint32_t ttl = 10;
  uint32_t weight = muster::kDefaultWeight;
  app.add_option("--registry", registry_address, "musterd host:port")->capture_default_str();
  app.add_option("--listen", listen, "host:port to serve on (port 0: any free port)")
      ->capture_default_str();
  app.add_option("--id", id, "instance id (default: echo-PORT)");
  app.add_option("--service", service, "service name")->capture_default_str();
  app.add_option("--ttl", ttl, "lease TTL in seconds")->capture_default_str()->check(CLI::Range(1, 86400));
  app.add_option("--weight", weight, "weight for weighted balancers")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  CLI11_PARSE(app, argc, argv);

  // Listen first, so that the registered address has the real port.
  asio::io_context ioc(1);
  tcp::acceptor acceptor(ioc);
  try {
    size_t colon = listen.rfind(':');
    if (colon == std::string::npos) throw std::invalid_argument("--listen must be host:port");
    tcp::endpoint endpoint(asio::ip::make_address(listen.substr(0, colon)),
                           static_cast<uint16_t>(std::stoul(listen.substr(colon + 1))));
    acceptor.open(endpoint.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen();
  } catch (const std::exception& e) {
    std::cerr << "echo_server: cannot listen on " << listen << ": " << e.what() << "\n";
    return 1;
  }
  const tcp::endpoint bound = acceptor.local_endpoint();
  const std::string address = bound.address().to_string() + ":" + std::to_string(bound.port());
  if (id.empty()) id = "echo-" + std::to_string(bound.port());

  muster::MusterRegistryOptions registry_options;
  registry_options.addresses = {registry_address};
  auto registry = muster::NewMusterRegistry(registry_options);
  if (!registry.ok()) {
    std::cerr << "echo_server: " << registry.status() << "\n";
    return 1;
  }
  muster::Instance me;
  me.service = service;
  me.id = id;
  me.address = address;
  me.ttl_seconds = ttl;
  me.weight = weight;

  // Signals are caught from before the registration on, so that a SIGTERM
  // right after it still deregisters (the handler runs once ioc.run starts).
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const beast::error_code& ec, int) {
    if (ec) return;
    beast::error_code ignored;
    acceptor.close(ignored);
    ioc.stop();
  });
  muster::Heartbeater heartbeater(registry->get(), me, {});
  if (absl::Status s = heartbeater.Start(); !s.ok()) {
    std::cerr << "echo_server: cannot register with " << registry_address << ": " << s << "\n";
    return 1;
  }
  asio::co_spawn(ioc, Accept(acceptor, id), asio::detached);
  std::cout << "echo_server " << id << " listening on " << address << std::endl;
  ioc.run();

  heartbeater.Stop();  // deregisters
  const auto stats = heartbeater.stats();
  std::cout << "echo_server " << id << " stopped (" << stats.heartbeats << " heartbeats, "
            << stats.registrations << " registrations, " << stats.failures << " failures)"
            << std::endl;
  return 0;
}
