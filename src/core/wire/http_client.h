// A small blocking HTTP/1.1 client for musterctl, the tests, the benches and
// the SDK's musterd backend: one keep-alive connection to one host:port, every
// call bounded by a timeout. Not thread-safe: one HttpClient per thread. It is
// the client side of the wire (paths.h builds its targets, errors.h and
// answers.h read what comes back), in core so that musterctl needs nothing
// private of the SDK.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace muster::wire {

struct HttpRequest {
  std::string method = "GET";  // GET, PUT, POST, DELETE, ...
  std::string target;          // path and query, e.g. "/api/v1/services?namespace=x"
  std::string body;            // sent with Content-Type: application/json when non-empty
  std::vector<std::pair<std::string, std::string>> headers;
};

struct HttpResponse {
  int status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  // The first header with this name (case-insensitive), or nullopt.
  std::optional<std::string> Header(std::string_view name) const;
};

// The status a response reports: DecodeError (errors.h) of its status and
// body, so the code and message of a JSON error body, OK for 2xx.
absl::Status StatusFromResponse(const HttpResponse& response);

class HttpClient {
 public:
  // `address` is host:port. Nothing is connected until the first call.
  explicit HttpClient(std::string address);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request and reads the whole response, reusing the connection when
  // the server keeps it alive and reconnecting once when a reused connection
  // turns out closed. Transport failures (connect refused, reset, timeout) are
  // Unavailable or DeadlineExceeded; any HTTP status, even 4xx/5xx, is a
  // successful HttpResponse.
  absl::StatusOr<HttpResponse> Do(const HttpRequest& request,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(10));

  absl::StatusOr<HttpResponse> Get(std::string target,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(10));
  absl::StatusOr<HttpResponse> Put(std::string target, std::string body,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(10));
  absl::StatusOr<HttpResponse> Post(std::string target, std::string body,
                                    std::chrono::milliseconds timeout = std::chrono::seconds(10));
  absl::StatusOr<HttpResponse> Delete(std::string target,
                                      std::chrono::milliseconds timeout = std::chrono::seconds(10));

  const std::string& address() const { return address_; }

 private:
  struct Impl;
  std::string address_;
  std::unique_ptr<Impl> impl_;
};

// One Server-Sent Event.
struct SseEvent {
  std::string id;     // "id:" field, empty when absent
  std::string event;  // "event:" field, "message" when absent
  std::string data;   // "data:" lines joined with '\n'
};

// A Server-Sent Events stream over its own connection.
class SseStream {
 public:
  // Sends GET `target` and reads the response header. A non-200 answer is returned
  // as the error from StatusFromResponse (e.g. OutOfRange for 410).
  static absl::StatusOr<std::unique_ptr<SseStream>> Open(
      std::string address, std::string target,
      std::vector<std::pair<std::string, std::string>> headers = {},
      std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~SseStream();
  SseStream(const SseStream&) = delete;
  SseStream& operator=(const SseStream&) = delete;

  // The response headers of the stream.
  const HttpResponse& response() const;

  // The next event; comment lines (": keep-alive") are skipped. DeadlineExceeded
  // when none arrives within `timeout` (the stream stays usable), Unavailable
  // when the server closed the stream or the connection broke.
  absl::StatusOr<SseEvent> Next(std::chrono::milliseconds timeout);

  // Number of comment lines seen so far (keep-alives).
  uint64_t comments_seen() const;

 private:
  struct Impl;
  explicit SseStream(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace muster::wire
