// A blocking query (GET ...?index=N&wait=D) sent from a thread of its own, so
// a test can park it, make a change and then see when the answer came.
//
// A test that only checks the answer passes without the wake-up: a query that
// answers at its wait's end (or that was sent after the change) lists the
// change too. So: Start, WaitParked (musterd's /healthz counts the query as
// subscribed, so a change from now on must wake it), change, then
// AnsweredWithin — bounded well below the wait, so an answer that came from
// the timeout fails.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "core/wire/http_client.h"

namespace muster::testing {

class BlockingQuery {
 public:
  using Clock = std::chrono::steady_clock;

  // Sends GET `target` to `address` now, on its own connection, with a
  // client timeout of `timeout` (longer than the query's wait).
  BlockingQuery(std::string address, std::string target, std::chrono::milliseconds timeout);
  ~BlockingQuery();  // waits for the answer
  BlockingQuery(const BlockingQuery&) = delete;
  BlockingQuery& operator=(const BlockingQuery&) = delete;

  // The answer, once it came (waits for it).
  const absl::StatusOr<wire::HttpResponse>& Answer();

  // Waits for the answer and says whether it came by `since + bound`; a test
  // failure (with how long it took) when it came later or not at all.
  bool AnsweredWithin(Clock::time_point since, std::chrono::milliseconds bound);

 private:
  std::thread thread_;
  absl::StatusOr<wire::HttpResponse> answer_;  // written by thread_ before it ends
  Clock::time_point answered_at_;              // likewise
};

// Polls `address`'s /healthz until it counts at least `n` blocking queries
// waiting ("blocking_queries"); false (and a test failure) after `timeout`.
bool WaitForBlockingQueries(const std::string& address, size_t n,
                            std::chrono::milliseconds timeout = std::chrono::seconds(20));

}  // namespace muster::testing
