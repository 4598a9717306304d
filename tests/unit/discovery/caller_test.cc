#include "muster/call.h"

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/status_matchers.h"
#include "unit/discovery/test_registry.h"

namespace muster {
namespace {

using ::muster::testing::Eventually;
using ::muster::testing::IsOk;
using ::muster::testing::MakeInstance;
using ::muster::testing::Service;
using ::muster::testing::Options;
using ::muster::testing::HashKey;
using ::muster::testing::Only;
using ::muster::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using std::chrono::seconds;

const ServiceQuery kOrders = Service("orders");

class CallerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* id : {"a", "b", "c", "d"}) Register(id);
    ASSERT_THAT(discovery_.Get(kOrders), IsOk());
  }

  void Register(const std::string& id) {
    ASSERT_THAT(registry_->Register(MakeInstance("orders", id, 9000 + id[0]), {}), IsOk());
  }

  // A policy on the test's clock.
  CallPolicy Policy() {
    CallPolicy p;
    p.now = [this] { return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(now_ns_.load())); };
    return p;
  }
  void Advance(std::chrono::nanoseconds d) { now_ns_ += d.count(); }

  // An attempt that fails with Unavailable on the instances in `failing` and
  // records every instance it was run on.
  Caller::Attempt FailOn(std::vector<std::string> failing) {
    return [this, failing](const Instance& in) {
      tried_.push_back(in.id);
      if (std::find(failing.begin(), failing.end(), in.id) != failing.end()) {
        return absl::UnavailableError("connection refused by " + in.id);
      }
      return absl::OkStatus();
    };
  }

  int Count(const std::string& id) const { return static_cast<int>(std::count(tried_.begin(), tried_.end(), id)); }

  std::atomic<int64_t> now_ns_{std::chrono::nanoseconds(std::chrono::hours(1)).count()};
  std::unique_ptr<Registry> registry_ = NewMemoryRegistry();
  Discovery discovery_{registry_.get(), Options("round_robin")};
  std::vector<std::string> tried_;  // instances attempts ran on, in order
};

// An Unavailable from the first instance is retried on a different one.
TEST_F(CallerTest, RetriesOnAnotherInstanceAfterUnavailable) {
  Caller caller(&discovery_, Policy());
  int calls = 0;
  absl::Status s = caller.Call(kOrders, [&](const Instance& in) {
    tried_.push_back(in.id);
    return ++calls == 1 ? absl::UnavailableError("reset") : absl::OkStatus();
  });
  EXPECT_THAT(s, IsOk());
  ASSERT_EQ(tried_.size(), 2u);
  EXPECT_NE(tried_[0], tried_[1]);
}

// When every attempt fails, the call ends after max_attempts, each on a
// different instance, with the last error.
TEST_F(CallerTest, GivesUpAfterMaxAttemptsWithLastError) {
  CallPolicy policy = Policy();
  policy.max_attempts = 3;
  Caller caller(&discovery_, policy);
  int calls = 0;
  absl::Status s = caller.Call(kOrders, [&](const Instance& in) {
    tried_.push_back(in.id);
    return absl::DeadlineExceededError("timeout " + std::to_string(++calls));
  });
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kDeadlineExceeded, "timeout 3"));
  ASSERT_EQ(tried_.size(), 3u);
  EXPECT_EQ(std::set<std::string>(tried_.begin(), tried_.end()).size(), 3u);
}

// With fewer instances than attempts, each is tried once and the last error
// comes back (not "no instance left").
TEST_F(CallerTest, EachInstanceTriedAtMostOnce) {
  CallPolicy policy = Policy();
  policy.max_attempts = 10;
  Caller caller(&discovery_, policy);
  absl::Status s = caller.Call(kOrders, FailOn({"a", "b", "c", "d"}));
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("connection refused by")));
  EXPECT_EQ(tried_.size(), 4u);
  EXPECT_EQ(std::set<std::string>(tried_.begin(), tried_.end()).size(), 4u);
}

// A code outside retry_on is the instance's answer: returned at once.
TEST_F(CallerTest, NonRetryableErrorReturnedAtOnce) {
  Caller caller(&discovery_, Policy());
  absl::Status s = caller.Call(kOrders, [&](const Instance& in) {
    tried_.push_back(in.id);
    return absl::NotFoundError("no such order");
  });
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kNotFound, "no such order"));
  EXPECT_EQ(tried_.size(), 1u);
}

// No instance at all: the pick's error.
TEST_F(CallerTest, NoInstanceIsUnavailable) {
  Caller caller(&discovery_, Policy());
  absl::Status s = caller.Call(Service("nothing"), FailOn({}));
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("nothing")));
  EXPECT_TRUE(tried_.empty());
}

// After N consecutive failures an instance is skipped for base_ejection, then
// tried again; a second ejection lasts twice as long.
TEST_F(CallerTest, EjectsAfterConsecutiveFailuresAndReturns) {
  CallPolicy policy = Policy();
  policy.consecutive_failures_to_eject = 2;
  policy.base_ejection = seconds(5);
  policy.max_ejection = seconds(60);
  Caller caller(&discovery_, policy);
  auto attempt = FailOn({"a"});

  for (int i = 0; i < 20 && !caller.IsEjected(kOrders, "a"); ++i) {
    ASSERT_THAT(caller.Call(kOrders, attempt), IsOk());
  }
  ASSERT_TRUE(caller.IsEjected(kOrders, "a"));
  EXPECT_EQ(Count("a"), 2);

  for (int i = 0; i < 20; ++i) ASSERT_THAT(caller.Call(kOrders, attempt), IsOk());
  EXPECT_EQ(Count("a"), 2) << "an ejected instance was tried";

  Advance(seconds(5));
  EXPECT_FALSE(caller.IsEjected(kOrders, "a"));
  for (int i = 0; i < 20 && !caller.IsEjected(kOrders, "a"); ++i) {
    ASSERT_THAT(caller.Call(kOrders, attempt), IsOk());
  }
  ASSERT_TRUE(caller.IsEjected(kOrders, "a"));
  EXPECT_EQ(Count("a"), 4);

  // Ejected a second time: 10 s.
  Advance(seconds(5));
  EXPECT_TRUE(caller.IsEjected(kOrders, "a"));
  Advance(seconds(5));
  EXPECT_FALSE(caller.IsEjected(kOrders, "a"));
}

// Ejection time grows with each ejection (base * times ejected) but stops at
// max_ejection.
TEST_F(CallerTest, EjectionTimeGrowsUpToTheCap) {
  CallPolicy policy = Policy();
  policy.consecutive_failures_to_eject = 1;
  policy.base_ejection = seconds(5);
  policy.max_ejection = seconds(12);
  Caller caller(&discovery_, policy);
  PickRequest only_a = Only("a");
  for (int expected : {5, 10, 12, 12}) {
    SCOPED_TRACE(expected);
    ASSERT_FALSE(caller.IsEjected(kOrders, "a"));
    EXPECT_THAT(caller.Call(kOrders, FailOn({"a"}), only_a),
                StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
    ASSERT_TRUE(caller.IsEjected(kOrders, "a"));
    Advance(seconds(expected - 1));
    EXPECT_TRUE(caller.IsEjected(kOrders, "a"));
    Advance(seconds(1));
    EXPECT_FALSE(caller.IsEjected(kOrders, "a"));
  }
}

// Time spent healthy works ejections off: after a long quiet spell the next
// ejection is short again.
TEST_F(CallerTest, EjectionCountDecays) {
  CallPolicy policy = Policy();
  policy.consecutive_failures_to_eject = 1;
  policy.base_ejection = seconds(5);
  Caller caller(&discovery_, policy);
  PickRequest only_a = Only("a");
  for (int ejection : {5, 10, 15}) {  // each ejection runs to its end
    EXPECT_FALSE(caller.Call(kOrders, FailOn({"a"}), only_a).ok());
    Advance(seconds(ejection));
  }
  Advance(seconds(60));  // twelve quiet periods
  EXPECT_FALSE(caller.Call(kOrders, FailOn({"a"}), only_a).ok());
  Advance(seconds(4));
  EXPECT_TRUE(caller.IsEjected(kOrders, "a"));
  Advance(seconds(1));
  EXPECT_FALSE(caller.IsEjected(kOrders, "a"));
}

// A success ends the run of failures: only consecutive failures eject.
TEST_F(CallerTest, SuccessResetsFailureCount) {
  CallPolicy policy = Policy();
  policy.consecutive_failures_to_eject = 3;
  policy.max_attempts = 1;
  Caller caller(&discovery_, policy);
  PickRequest only_a = Only("a");
  auto fail = FailOn({"a"});
  auto succeed = FailOn({});
  EXPECT_FALSE(caller.Call(kOrders, fail, only_a).ok());
  EXPECT_FALSE(caller.Call(kOrders, fail, only_a).ok());
  EXPECT_TRUE(caller.Call(kOrders, succeed, only_a).ok());
  EXPECT_FALSE(caller.Call(kOrders, fail, only_a).ok());
  EXPECT_FALSE(caller.Call(kOrders, fail, only_a).ok());
  EXPECT_FALSE(caller.IsEjected(kOrders, "a"));
  EXPECT_FALSE(caller.Call(kOrders, fail, only_a).ok());
  EXPECT_TRUE(caller.IsEjected(kOrders, "a"));
}

// However many instances fail, at most max_ejected_share of the service's
// instances are ejected at once.
TEST_F(CallerTest, NeverEjectsMoreThanMaxShare) {
  CallPolicy policy = Policy();
  policy.consecutive_failures_to_eject = 1;
  policy.max_ejected_share = 0.5;
  policy.max_attempts = 4;
  Caller caller(&discovery_, policy);
  for (int i = 0; i < 40; ++i) ASSERT_THAT(caller.Call(kOrders, FailOn({"a", "b", "c"})), IsOk());
  int ejected = 0;
  for (const char* id : {"a", "b", "c", "d"}) ejected += caller.IsEjected(kOrders, id) ? 1 : 0;
  EXPECT_EQ(ejected, 2);
  EXPECT_FALSE(caller.IsEjected(kOrders, "d"));
}

// When only ejected instances are left, they are used rather than failing the
// call for want of an instance.
TEST_F(CallerTest, UsesEjectedInstancesWhenNothingElseIsLeft) {
  CallPolicy policy = Policy();
  policy.consecutive_failures_to_eject = 1;
  Caller caller(&discovery_, policy);
  PickRequest only_a = Only("a");
  EXPECT_FALSE(caller.Call(kOrders, FailOn({"a"}), only_a).ok());
  ASSERT_TRUE(caller.IsEjected(kOrders, "a"));
  tried_.clear();
  EXPECT_THAT(caller.Call(kOrders, FailOn({}), only_a), IsOk());
  EXPECT_THAT(tried_, ElementsAre("a"));
}

// Discovery::Done follows every attempt, failed ones included. With
// least_request over two instances, one whose failed attempt was never
// reported done would look busy for ever and never be picked again.
TEST_F(CallerTest, ReportsDoneAfterEveryAttempt) {
  ASSERT_THAT(registry_->Register(MakeInstance("pair", "p1", 9201), {}), IsOk());
  ASSERT_THAT(registry_->Register(MakeInstance("pair", "p2", 9202), {}), IsOk());
  Discovery discovery(registry_.get(), Options("least_request"));
  Caller caller(&discovery, Policy());
  int calls = 0;
  ASSERT_THAT(caller.Call(Service("pair"),
                          [&](const Instance&) {
                            return ++calls == 1 ? absl::UnavailableError("reset") : absl::OkStatus();
                          }),
              IsOk());
  ASSERT_EQ(calls, 2);
  std::set<std::string> seen;
  for (int i = 0; i < 64; ++i) {
    auto picked = discovery.Pick(Service("pair"));
    ASSERT_THAT(picked, IsOk());
    seen.insert(picked->instance().id);
    discovery.Done(Service("pair"), *picked, true);
  }
  EXPECT_THAT(seen, ElementsAre("p1", "p2"));
}

// Ejection is per service: the same id in another service is not affected.
TEST_F(CallerTest, EjectionIsPerService) {
  ASSERT_THAT(registry_->Register(MakeInstance("billing", "a", 9100), {}), IsOk());
  ASSERT_THAT(registry_->Register(MakeInstance("billing", "b", 9101), {}), IsOk());
  CallPolicy policy = Policy();
  policy.consecutive_failures_to_eject = 1;
  Caller caller(&discovery_, policy);
  PickRequest only_a = Only("a");
  EXPECT_FALSE(caller.Call(kOrders, FailOn({"a"}), only_a).ok());
  EXPECT_TRUE(caller.IsEjected(kOrders, "a"));
  EXPECT_FALSE(caller.IsEjected(Service("billing"), "a"));
}

// An ejected instance that leaves the service no longer counts against the
// ejection share: another failing instance can then be ejected.
TEST_F(CallerTest, DepartedInstancesDoNotUseUpTheShare) {
  CallPolicy policy = Policy();
  policy.consecutive_failures_to_eject = 1;
  policy.max_ejected_share = 0.25;  // one of four
  Caller caller(&discovery_, policy);
  EXPECT_FALSE(caller.Call(kOrders, FailOn({"a"}), Only("a")).ok());
  ASSERT_TRUE(caller.IsEjected(kOrders, "a"));
  EXPECT_FALSE(caller.Call(kOrders, FailOn({"b"}), Only("b")).ok());
  EXPECT_FALSE(caller.IsEjected(kOrders, "b"));  // the share is spent

  ASSERT_THAT(registry_->Deregister({"default", "orders", "a"}, {}), IsOk());
  Register("e");
  ASSERT_TRUE(Eventually([&] {
    auto s = discovery_.Get(kOrders);
    return s.ok() && (*s)->instances->size() == 4 && (*s)->instances->front().id == "b";
  }));
  EXPECT_FALSE(caller.Call(kOrders, FailOn({"b"}), Only("b")).ok());
  EXPECT_TRUE(caller.IsEjected(kOrders, "b"));
  EXPECT_FALSE(caller.IsEjected(kOrders, "a"));
}

}  // namespace
}  // namespace muster
