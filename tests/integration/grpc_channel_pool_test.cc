// GrpcChannelPool against a real musterd and real gRPC Greeter servers
// (examples/greeter/greeter.proto) run in this process on loopback addresses
// 127.0.0.1, 127.0.0.2, ...: calls spread by the balancer, channels follow
// the registry (made when an instance appears, dropped when it leaves:
// deregistered, lease lapsed, critical), a dead backend is retried around
// and ejected, a request key keeps to one instance.
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>

#include "greeter.grpc.pb.h"
#include "integration/greeter_backend.h"
#include "integration/musterd_fixture.h"
#include "muster/grpc_channel_pool.h"
#include "muster/muster.h"
#include "support/status_matchers.h"

namespace muster::testing {
namespace {

using examples::HelloReply;
using examples::HelloRequest;
using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

// How long a change pushed by musterd may take to reach the pool: it comes
// at once over the watch stream; this only bounds a loaded machine.
constexpr milliseconds kPushed = seconds(2);

// A Greeter served in this process (integration/greeter_backend.h).
using Backend = GreeterBackend;

ServiceQuery Greeter() {
  ServiceQuery q;
  q.service = "greeter";
  return q;
}

PickRequest Key(uint64_t key) {
  PickRequest r;
  r.hash_key = key;
  return r;
}

class GrpcChannelPoolTest : public MusterdTest {
 protected:
  void SetUp() override {
    MusterdTest::SetUp();
    if (HasFatalFailure()) return;
    MusterRegistryOptions options;
    options.addresses = {musterd_.address()};
    auto registry = NewMusterRegistry(options);
    ASSERT_THAT(registry, IsOk());
    registry_ = *std::move(registry);
  }

  // A started backend; the n-th one listens on 127.0.0.n.
  Backend& StartBackend(const std::string& id) {
    const std::string host = "127.0.0." + std::to_string(backends_.size() + 1);
    auto& b = backends_.emplace_back(std::make_unique<Backend>(id, host));
    EXPECT_TRUE(b->Start()) << "cannot serve on " << host;
    return *b;
  }

  Instance InstanceOf(const Backend& b, uint32_t weight = kDefaultWeight, uint32_t ttl = 60) {
    Instance in;
    in.service = "greeter";
    in.id = b.id();
    in.address = b.address();
    in.weight = weight;
    in.ttl_seconds = ttl;
    return in;
  }

  void Register(const Instance& in) { ASSERT_THAT(registry_->Register(in, {}), IsOk()); }

  void Deregister(const std::string& id) {
    ASSERT_THAT(registry_->Deregister({"default", "greeter", id}, {}), IsOk());
  }

  // Discovery with `balancer` and a pool over it (replacing earlier ones).
  void MakePool(const std::string& balancer, GrpcChannelPoolOptions options = {}) {
    pool_.reset();
    DiscoveryOptions discovery_options;
    discovery_options.balancer = balancer;
    discovery_ = std::make_unique<Discovery>(registry_.get(), discovery_options);
    pool_ = std::make_unique<GrpcChannelPool>(discovery_.get(), std::move(options));
  }

  // One call through the pool; the id of the instance that answered (in
  // `answered`), or the error. Counts the attempts.
  grpc::Status SayHello(std::string* answered, const PickRequest& request = {},
                        const std::string& name = "ann") {
    HelloRequest req;
    req.set_name(name);
    HelloReply reply;
    grpc::Status s = pool_->Call(
        Greeter(),
        [&](const std::shared_ptr<grpc::Channel>& channel, const Instance& instance) {
          ++attempts_;
          examples::Greeter::Stub stub(channel);
          grpc::ClientContext context;
          context.set_deadline(std::chrono::system_clock::now() + seconds(5));
          grpc::Status a = stub.SayHello(&context, req, &reply);
          if (!a.ok()) failed_on_.push_back(instance.id);
          return a;
        },
        request);
    if (s.ok() && answered != nullptr) *answered = reply.instance_id();
    return s;
  }

  // `n` calls that must all succeed; how many each instance answered.
  std::map<std::string, int> Calls(int n, const PickRequest& request = {}) {
    std::map<std::string, int> by_id;
    for (int i = 0; i < n; ++i) {
      std::string id;
      grpc::Status s = SayHello(&id, request);
      EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
      ++by_id[id];
    }
    return by_id;
  }

  bool ChannelsBecome(size_t n, milliseconds timeout = kPushed) {
    return WaitFor([&] { return pool_->channel_count() == n; }, timeout, milliseconds(5));
  }

  std::unique_ptr<Registry> registry_;
  std::vector<std::unique_ptr<Backend>> backends_;
  // Destroyed before the registry: the pool first, then its Discovery.
  std::unique_ptr<Discovery> discovery_;
  std::unique_ptr<GrpcChannelPool> pool_;
  int attempts_ = 0;
  std::vector<std::string> failed_on_;  // the instance of each failed attempt

  void TearDown() override {
    pool_.reset();
    discovery_.reset();
    MusterdTest::TearDown();
  }
};

// With weights 300/100 the weighted balancer sends about three quarters of
// the calls to the heavy instance; a band of 600..900 of 1000 is over ten
// standard deviations wide on either side, so only a broken weighting fails.
TEST_F(GrpcChannelPoolTest, CallsSpreadByWeight) {
  Backend& heavy = StartBackend("heavy");
  Backend& light = StartBackend("light");
  Register(InstanceOf(heavy, 300));
  Register(InstanceOf(light, 100));
  MakePool("weighted_random");

  auto by_id = Calls(1000);
  EXPECT_GE(by_id["heavy"], 600);
  EXPECT_LE(by_id["heavy"], 900);
  EXPECT_EQ(by_id["heavy"] + by_id["light"], 1000);
  EXPECT_EQ(heavy.calls(), by_id["heavy"]);
  EXPECT_EQ(light.calls(), by_id["light"]);
  EXPECT_EQ(attempts_, 1000);
  EXPECT_EQ(pool_->channel_count(), 2u);

  // Smooth weighted round robin is exact: 3 of every 4.
  MakePool("weighted_round_robin");
  by_id = Calls(400);
  EXPECT_EQ(by_id["heavy"], 300);
  EXPECT_EQ(by_id["light"], 100);
}

// A newly registered instance gets its channel as soon as the registry
// pushes it, and calls soon after.
TEST_F(GrpcChannelPoolTest, NewInstanceReceivesCallsAtOnce) {
  Backend& a = StartBackend("a");
  Register(InstanceOf(a));
  MakePool("round_robin");
  EXPECT_EQ(Calls(4)["a"], 4);
  EXPECT_EQ(pool_->channel_count(), 1u);

  Backend& b = StartBackend("b");
  Register(InstanceOf(b));
  // The channel is made when the instance appears, before any call to it.
  EXPECT_TRUE(ChannelsBecome(2)) << pool_->channel_count();
  EXPECT_EQ(b.calls(), 0);
  EXPECT_TRUE(WaitFor([&] { return SayHello(nullptr).ok() && b.calls() > 0; }, kPushed,
                      milliseconds(1)));
}

// A deregistered instance loses its channel and gets no more calls.
TEST_F(GrpcChannelPoolTest, DeregisteredInstanceReceivesNone) {
  Backend& a = StartBackend("a");
  Backend& b = StartBackend("b");
  Register(InstanceOf(a));
  Register(InstanceOf(b));
  MakePool("round_robin");
  auto before = Calls(10);
  EXPECT_EQ(before["a"], 5);
  EXPECT_EQ(before["b"], 5);

  Deregister("b");
  ASSERT_TRUE(ChannelsBecome(1)) << pool_->channel_count();
  EXPECT_EQ(Calls(100)["a"], 100);
  EXPECT_EQ(b.calls(), 5);
}

// An instance whose lease lapses (no heartbeats) leaves the pool.
TEST_F(GrpcChannelPoolTest, ExpiredInstanceReceivesNone) {
  Backend& a = StartBackend("a");
  Backend& b = StartBackend("b");
  Register(InstanceOf(a));
  Register(InstanceOf(b, kDefaultWeight, /*ttl=*/2));
  MakePool("round_robin");
  auto before = Calls(2);
  EXPECT_EQ(before["b"], 1);

  // The lease lapses within its 2 s (plus musterd's sweep); the removal is
  // then pushed.
  ASSERT_TRUE(ChannelsBecome(1, seconds(15))) << pool_->channel_count();
  EXPECT_EQ(List("greeter").Find("b"), nullptr);
  const int b_calls = b.calls();
  EXPECT_EQ(Calls(100)["a"], 100);
  EXPECT_EQ(b.calls(), b_calls);
}

// An instance whose check turns critical leaves the pool (it stays
// registered); it comes back when the check passes again.
TEST_F(GrpcChannelPoolTest, CriticalInstanceReceivesNoneUntilItPassesAgain) {
  Backend& a = StartBackend("a");
  Backend& b = StartBackend("b");
  Register(InstanceOf(a));
  Instance checked = InstanceOf(b);
  Check reported;
  reported.id = "app";
  reported.type = CheckType::kTtl;
  reported.ttl = seconds(120);
  reported.status = Health::kPassing;
  checked.checks.push_back(reported);
  Register(checked);
  MakePool("round_robin");
  EXPECT_EQ(Calls(10)["b"], 5);

  const std::string report = "/api/v1/services/greeter/instances/b/checks/app";
  ASSERT_EQ(Must(client().Put(report, R"({"status":"critical","output":"db down"})")).status, 200);
  ASSERT_TRUE(ChannelsBecome(1)) << pool_->channel_count();
  ASSERT_NE(List("greeter").Find("b"), nullptr);
  EXPECT_EQ(Calls(100)["a"], 100);
  EXPECT_EQ(b.calls(), 5);

  ASSERT_EQ(Must(client().Put(report, R"({"status":"passing"})")).status, 200);
  ASSERT_TRUE(ChannelsBecome(2)) << pool_->channel_count();
  EXPECT_GT(Calls(10)["b"], 0);
}

// A backend that dies is retried around: every call still succeeds, the
// failures are all on the dead one, and it gets ejected.
TEST_F(GrpcChannelPoolTest, KilledBackendIsRetriedElsewhereAndEjected) {
  Backend& a = StartBackend("a");
  Backend& b = StartBackend("b");
  Backend& c = StartBackend("c");
  for (Backend* backend : {&a, &b, &c}) Register(InstanceOf(*backend));
  MakePool("round_robin");
  auto before = Calls(30);
  EXPECT_EQ(before.size(), 3u);

  b.Stop();  // still registered: the pool keeps picking it until ejected
  bool ejected = false;
  for (int i = 0; i < 60; ++i) {
    std::string id;
    grpc::Status s = SayHello(&id);
    ASSERT_TRUE(s.ok()) << i << ": " << s.error_code() << " " << s.error_message();
    EXPECT_NE(id, "b");
    ejected = ejected || pool_->IsEjected(Greeter(), "b");
  }
  EXPECT_TRUE(ejected);
  // Ejection comes after consecutive_failures_to_eject (3) failures.
  EXPECT_GE(failed_on_.size(), 3u);
  for (const std::string& id : failed_on_) EXPECT_EQ(id, "b");
  EXPECT_EQ(attempts_, 30 + 60 + static_cast<int>(failed_on_.size()));
}

// Channels are made per address and dropped when the last instance at it
// leaves; Channel() hands out the pool's own.
TEST_F(GrpcChannelPoolTest, ChannelsFollowInstancesAndAreSharedByAddress) {
  Backend& a = StartBackend("a");
  Backend& b = StartBackend("b");
  Register(InstanceOf(a));
  Register(InstanceOf(b));
  MakePool("round_robin");
  ASSERT_TRUE(pool_->Follow(Greeter()).ok());
  EXPECT_EQ(pool_->channel_count(), 2u);

  const Instance in_a = InstanceOf(a);
  std::shared_ptr<grpc::Channel> channel_a = pool_->Channel(in_a);
  EXPECT_EQ(pool_->Channel(in_a), channel_a);
  EXPECT_NE(pool_->Channel(InstanceOf(b)), channel_a);

  // A second instance at a's address shares its channel.
  Instance alias = InstanceOf(a);
  alias.id = "a-alias";
  Register(alias);
  ASSERT_TRUE(WaitFor([&] { return discovery_->Get(Greeter()).value()->instances->size() == 3; },
                      kPushed));
  EXPECT_EQ(pool_->channel_count(), 2u);
  Deregister("a");
  ASSERT_TRUE(WaitFor([&] { return discovery_->Get(Greeter()).value()->instances->size() == 2; },
                      kPushed));
  EXPECT_EQ(pool_->channel_count(), 2u);
  EXPECT_EQ(pool_->Channel(alias), channel_a);
  Deregister("a-alias");
  ASSERT_TRUE(ChannelsBecome(1)) << pool_->channel_count();

  // An instance the registry does not list gets a channel of its own.
  std::shared_ptr<grpc::Channel> own = pool_->Channel(in_a);
  ASSERT_NE(own, nullptr);
  EXPECT_NE(own, channel_a);
  EXPECT_EQ(pool_->channel_count(), 1u);

  // Forgetting the service in Discovery drops its channels; the next call
  // follows it again.
  discovery_->Forget(Greeter());
  EXPECT_EQ(pool_->channel_count(), 0u);
  EXPECT_EQ(Calls(2)["b"], 2);
  EXPECT_EQ(pool_->channel_count(), 1u);
}

// Ring hash and Maglev send every call with one request key to one instance,
// and different keys to different instances.
TEST_F(GrpcChannelPoolTest, HashingSendsTheSameKeyToTheSameInstance) {
  for (const char* id : {"a", "b", "c"}) Register(InstanceOf(StartBackend(id)));
  for (const std::string policy : {"ring_hash", "maglev"}) {
    SCOPED_TRACE(policy);
    MakePool(policy);
    std::set<std::string> used;
    for (uint64_t key = 1; key <= 50; ++key) {
      auto by_id = Calls(5, Key(key * 0x9e3779b97f4a7c15ULL));
      ASSERT_EQ(by_id.size(), 1u) << "key " << key;
      EXPECT_EQ(by_id.begin()->second, 5);
      used.insert(by_id.begin()->first);
    }
    // 50 keys on one instance of three: about 3^-49 by chance.
    EXPECT_GT(used.size(), 1u);
  }
}

// least_request works through the pool from many threads (every attempt is
// reported back with Done).
TEST_F(GrpcChannelPoolTest, LeastRequestFromManyThreads) {
  for (const char* id : {"a", "b", "c"}) Register(InstanceOf(StartBackend(id)));
  MakePool("least_request");
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        HelloReply reply;
        grpc::Status s = pool_->Call(
            Greeter(), [&](const std::shared_ptr<grpc::Channel>& channel, const Instance&) {
              examples::Greeter::Stub stub(channel);
              grpc::ClientContext context;
              context.set_deadline(std::chrono::system_clock::now() + seconds(5));
              HelloRequest req;
              req.set_name("t");
              return stub.SayHello(&context, req, &reply);
            });
        if (s.ok()) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 200);
  for (const auto& b : backends_) EXPECT_GT(b->calls(), 0) << b->id();
}

// An answer that is not a transport failure is returned as gRPC gave it,
// after one attempt, and counts nothing against the instance.
TEST_F(GrpcChannelPoolTest, ApplicationErrorIsReturnedWithoutRetry) {
  Backend& a = StartBackend("a");
  Backend& b = StartBackend("b");
  Register(InstanceOf(a));
  Register(InstanceOf(b));
  MakePool("round_robin");
  for (int i = 0; i < 5; ++i) {
    grpc::Status s = SayHello(nullptr, {}, "missing");
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(s.error_message(), "no such name");
  }
  EXPECT_EQ(attempts_, 5);
  EXPECT_FALSE(pool_->IsEjected(Greeter(), "a"));
  EXPECT_FALSE(pool_->IsEjected(Greeter(), "b"));
}

// With no instance to pick, Call answers UNAVAILABLE and never attempts.
TEST_F(GrpcChannelPoolTest, NoInstanceIsUnavailable) {
  MakePool("round_robin");
  grpc::Status s = SayHello(nullptr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), HasSubstr("greeter"));
  EXPECT_EQ(attempts_, 0);
  EXPECT_EQ(pool_->channel_count(), 0u);

  // A bad balancer name is the caller's error.
  MakePool("no_such_policy");
  s = SayHello(nullptr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace muster::testing
