// Fuzzes musterd's request path with the bytes a client sends on one
// connection: the header reader (server/http_request.h: where a header ends,
// its framing and Host) and the router (ApiHandler) on a catalog in memory,
// request after request as a keep-alive session reads them.
//
// Checks besides not crashing: every answer is JSON that parses and is valid
// UTF-8; a request refused by the reader is the last one read (the
// connection closes); and a request that is refused or fails changes
// nothing (the registry revision stays where it was).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include <boost/json.hpp>

#include "catalog/catalog.h"
#include "catalog/local_committer.h"
#include "fuzz_support.h"
#include "server/api_handler.h"
#include "server/config.h"
#include "server/http_request.h"

namespace muster {
namespace {

// The answer's bytes must be what a client can read.
void CheckAnswer(const Response& response) {
  std::string payload = response.body();
  if (response.shared != nullptr) payload += *response.shared;
  payload += response.tail;
  if (payload.empty()) return;  // GeeRPC answers in headers, Consul's agent writes with nothing
  FUZZ_CHECK(fuzz::IsUtf8(payload), "an answer that is not UTF-8");
  auto type = response.find(http::field::content_type);
  if (type != response.end() && type->value().starts_with("text/plain")) return;  // Consul's errors
  boost::system::error_code ec;
  boost::json::parse(payload, ec);
  FUZZ_CHECK(!ec, "an answer that is not JSON");
}

struct World {
  World() {
    // Blocking queries must not block the fuzzer: a wait is over at once,
    // and a longer one is refused.
    config.default_wait = std::chrono::milliseconds(0);
    config.max_wait = std::chrono::milliseconds(1);
    config.list_cache_mb = 1;
    CatalogOptions options;
    options.history = 256;
    LocalCommitterOptions committer;
    committer.limits = config.limits;
    // Time stands still: no lease lapses while an input runs, so a change
    // of revision during one is the input's doing.
    committer.clock = &clock;
    catalog = std::make_unique<Catalog>(options, std::make_unique<LocalCommitter>(committer, nullptr));
    FUZZ_CHECK(catalog->Start().ok(), "the catalog starts");
    api = std::make_unique<ApiHandler>(config, *catalog);
  }
  ~World() { catalog->Stop(); }

  ServerConfig config;
  ManualClock clock;
  std::unique_ptr<Catalog> catalog;
  std::unique_ptr<ApiHandler> api;
  asio::io_context ioc{1};
};

World& TheWorld() {
  // Renewed now and then, so that what earlier inputs registered does not
  // pile up without bound.
  static std::unique_ptr<World> world;
  static size_t runs = 0;
  if (world == nullptr || ++runs % 4096 == 0) {
    world.reset();
    world = std::make_unique<World>();
  }
  return *world;
}

ApiHandler::Reply Handle(World& world, Request& request) {
  std::optional<ApiHandler::Reply> reply;
  // A write is answered from the catalog's committer thread: the context
  // keeps running until the answer is in.
  auto work = asio::make_work_guard(world.ioc);
  asio::co_spawn(
      world.ioc,
      [&]() -> awaitable<void> {
        reply = co_await world.api->Handle(request);
        work.reset();
      },
      asio::detached);
  world.ioc.restart();
  world.ioc.run();
  FUZZ_CHECK(reply.has_value(), "a request is answered");
  return *std::move(reply);
}

}  // namespace
}  // namespace muster

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace muster;
  World& world = TheWorld();
  const HostPolicy hosts("127.0.0.1", {"registry.internal"});
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  for (int requests = 0; requests < 8 && !bytes.empty(); ++requests) {
    const uint64_t before = world.catalog->revision();
    const size_t header_end = HeaderEnd(bytes);
    if (header_end == 0) {
      // musterd waits for the rest (or refuses a header over the limit).
      return 0;
    }
    RequestParser parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(world.config.limits.max_body_bytes);
    if (std::optional<Response> refused =
            ReadHeader(bytes.substr(0, header_end), parser, hosts, world.config.limits.max_body_bytes)) {
      CheckAnswer(*refused);
      FUZZ_CHECK(refused->result_int() >= 400, "a refusal is an error");
      FUZZ_CHECK(world.catalog->revision() == before, "a refused request changes nothing");
      return 0;  // the connection closes
    }
    bytes.remove_prefix(header_end);
    // The body, as the session's read takes it from the connection.
    while (!parser.is_done()) {
      beast::error_code ec;
      const size_t used = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
      bytes.remove_prefix(used);
      if (ec == http::error::need_more && bytes.empty()) return 0;  // waits for more
      if (ec && ec != http::error::need_more) {
        std::optional<Response> failure = ReadFailure(ec, world.config.limits.max_body_bytes);
        if (failure) CheckAnswer(*failure);
        FUZZ_CHECK(world.catalog->revision() == before, "a request refused in its body changes nothing");
        return 0;
      }
      if (used == 0 && !parser.is_done()) {
        parser.put_eof(ec);  // the client ends the connection
        return 0;
      }
    }
    Request request = parser.release();
    ApiHandler::Reply reply = Handle(world, request);
    if (const auto* response = std::get_if<Response>(&reply)) {
      CheckAnswer(*response);
      if (response->result_int() >= 400) {
        FUZZ_CHECK(world.catalog->revision() == before, "a failed request changes nothing");
      }
    } else {
      return 0;  // a watch streams on this connection until it ends
    }
    if (!request.keep_alive()) return 0;
  }
  return 0;
}
