#include "support/blocking_query.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "support/api_helpers.h"
#include "support/musterd_process.h"

namespace muster::testing {

BlockingQuery::BlockingQuery(std::string address, std::string target,
                             std::chrono::milliseconds timeout)
    : answer_(absl::UnknownError("not answered yet")) {
  thread_ = std::thread([this, address = std::move(address), target = std::move(target), timeout] {
    wire::HttpClient own(address);
    answer_ = own.Get(target, timeout);
    answered_at_ = Clock::now();
  });
}

BlockingQuery::~BlockingQuery() {
  if (thread_.joinable()) thread_.join();
}

const absl::StatusOr<wire::HttpResponse>& BlockingQuery::Answer() {
  if (thread_.joinable()) thread_.join();
  return answer_;
}

bool BlockingQuery::AnsweredWithin(Clock::time_point since, std::chrono::milliseconds bound) {
  if (!Answer().ok()) {
    ADD_FAILURE() << "the blocking query failed: " << answer_.status();
    return false;
  }
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(answered_at_ - since);
  if (took > bound) {
    ADD_FAILURE() << "the blocking query answered " << took.count()
                  << " ms after the change, over the bound of " << bound.count()
                  << " ms: the change did not wake it";
    return false;
  }
  return true;
}

bool WaitForBlockingQueries(const std::string& address, size_t n,
                            std::chrono::milliseconds timeout) {
  wire::HttpClient client(address);
  std::string last;
  const bool parked = WaitFor(
      [&] {
        auto r = client.Get("/healthz");
        if (!r.ok() || r->status != 200) return false;
        last = r->body;
        boost::system::error_code ec;
        boost::json::value v = boost::json::parse(r->body, ec);
        if (ec || !v.is_object()) return false;
        const boost::json::value* count = v.as_object().if_contains("blocking_queries");
        return count != nullptr && count->is_number() && count->to_number<uint64_t>() >= n;
      },
      timeout);
  if (!parked) {
    ADD_FAILURE() << "musterd never counted " << n << " blocking queries waiting; last /healthz: "
                  << last;
  }
  return parked;
}

}  // namespace muster::testing
