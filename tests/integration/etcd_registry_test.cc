// The etcd backend (NewEtcdRegistry) on a real etcd: the conformance suite on
// a one-member cluster, then what a three-member cluster adds: members that
// die under load, watches and leases that move to another member, and etcd
// authentication.
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "muster/registry.h"
#include "rpc.grpc.pb.h"
#include "support/etcd_cluster.h"
#include "support/status_matchers.h"
#include "unit/registry/registry_conformance.h"

namespace muster::testing {
namespace {

using std::chrono::milliseconds;
using ::testing::ElementsAre;

constexpr milliseconds kWait{20000};

EtcdRegistryOptions OptionsFor(const EtcdCluster& cluster, std::string prefix) {
  EtcdRegistryOptions options;
  options.endpoints = cluster.endpoints();
  options.prefix = std::move(prefix);
  options.dial_timeout = std::chrono::seconds(5);
  options.retry_interval = milliseconds(100);
  options.max_retries = 10;
  return options;
}

// ---------------------------------------------------------------------------
// The conformance suite, on a one-member cluster of its own per test.

class EtcdHarness final : public RegistryHarness {
 public:
  absl::Status SetUp() override {
    EtcdClusterOptions options;
    options.members = 1;
    auto cluster = EtcdCluster::Start(options);
    if (!cluster.ok()) return cluster.status();
    cluster_ = *std::move(cluster);
    return absl::OkStatus();
  }
  std::unique_ptr<Registry> NewRegistry() override {
    auto registry = NewEtcdRegistry(OptionsFor(*cluster_, "/conformance"));
    EXPECT_TRUE(registry.ok()) << registry.status();
    return registry.ok() ? *std::move(registry) : nullptr;
  }
  std::string Diagnostics() const override {
    return cluster_ == nullptr ? "" : "---- etcd logs ----\n" + cluster_->Logs();
  }

 private:
  std::unique_ptr<EtcdCluster> cluster_;
};

INSTANTIATE_TEST_SUITE_P(Etcd, RegistryConformanceTest,
                         ::testing::Values(RegistryBackend{
                             "etcd", [] { return std::make_unique<EtcdHarness>(); }}),
                         BackendName);

// ---------------------------------------------------------------------------
// Options and the key layout.

TEST(EtcdRegistryTest, BadOptionsAreInvalidArgument) {
  EtcdRegistryOptions options;
  EXPECT_THAT(NewEtcdRegistry(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.endpoints = {"127.0.0.1:1"};
  options.ttl = std::chrono::seconds(-1);
  EXPECT_THAT(NewEtcdRegistry(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.ttl = std::chrono::seconds(0);
  options.endpoints = {"ftp://127.0.0.1:1/x"};
  EXPECT_THAT(NewEtcdRegistry(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.endpoints = {"127.0.0.1:1"};
  options.cert_file = "/nonexistent/cert.pem";
  options.key_file = "/nonexistent/key.pem";
  EXPECT_THAT(NewEtcdRegistry(options).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(EtcdRegistryTest, NoMemberAnsweringIsUnavailableWithinTheDialTimeout) {
  EtcdRegistryOptions options;
  options.endpoints = {"127.0.0.1:1"};
  options.dial_timeout = milliseconds(500);
  const auto start = std::chrono::steady_clock::now();
  auto registry = NewEtcdRegistry(options);
  EXPECT_EQ(registry.status().code(), absl::StatusCode::kUnavailable) << registry.status();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

class EtcdClusterTest : public ::testing::Test {
 protected:
  void StartCluster(int members) {
    EtcdClusterOptions options;
    options.members = members;
    auto cluster = EtcdCluster::Start(options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
  }
  void TearDown() override {
    if (HasFailure() && cluster_ != nullptr) std::cerr << cluster_->Logs();
  }
  std::unique_ptr<Registry> NewRegistry(const std::string& prefix = "/muster") {
    auto registry = NewEtcdRegistry(OptionsFor(*cluster_, prefix));
    EXPECT_TRUE(registry.ok()) << registry.status();
    return registry.ok() ? *std::move(registry) : nullptr;
  }
  // The raw value of `key` through member `member`; "" when absent.
  std::string Get(int member, const std::string& key) {
    auto kv = etcdserverpb::KV::NewStub(cluster_->Channel(member));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    etcdserverpb::RangeRequest request;
    request.set_key(key);
    etcdserverpb::RangeResponse response;
    grpc::Status status = kv->Range(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.kvs().empty() ? "" : response.kvs(0).value();
  }

  std::unique_ptr<EtcdCluster> cluster_;
  CallOptions call_;
};

TEST_F(EtcdClusterTest, KeysFollowTheDocumentedLayout) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(1));
  auto registry = NewRegistry("/layout");
  ASSERT_NE(registry, nullptr);
  Instance a = TestInstance("a", "svc", "v1");
  a.ns = "prod";
  ASSERT_THAT(registry->Register(a, call_), IsOk());
  ASSERT_THAT(registry->Register(TestInstance("b"), call_), IsOk());
  EXPECT_THAT(Get(0, "/layout/services/prod/svc/v1/a"), ::testing::HasSubstr("\"id\":\"a\""));
  EXPECT_THAT(Get(0, "/layout/services/default/svc/~/b"), ::testing::HasSubstr("\"id\":\"b\""));
  ASSERT_THAT(registry->Deregister({"default", "svc", "b"}, call_), IsOk());
  EXPECT_EQ(Get(0, "/layout/services/default/svc/~/b"), "");
  EXPECT_EQ(Get(0, "/layout/services/default/svc/!deregistered"), "b");
}

// Two registries with different prefixes do not see each other.
TEST_F(EtcdClusterTest, PrefixesSeparateDeployments) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(1));
  auto blue = NewRegistry("/blue");
  auto green = NewRegistry("/green");
  ASSERT_NE(blue, nullptr);
  ASSERT_NE(green, nullptr);
  ASSERT_THAT(blue->Register(TestInstance("a"), call_), IsOk());
  auto list = green->ListServices(Query("svc"), call_);
  ASSERT_THAT(list, IsOk());
  EXPECT_TRUE(list->instances.empty());
}

// The registry-wide TTL option replaces each instance's, and the lease
// really lapses after it.
TEST_F(EtcdClusterTest, TtlOptionOverridesTheInstanceTtl) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(1));
  EtcdRegistryOptions options = OptionsFor(*cluster_, "/ttl");
  options.ttl = std::chrono::seconds(1);
  auto registry = NewEtcdRegistry(options);
  ASSERT_THAT(registry, IsOk());
  Instance forever = TestInstance("a");
  forever.ttl_seconds = 0;
  auto stored = (*registry)->Register(forever, call_);
  ASSERT_THAT(stored, IsOk());
  EXPECT_EQ(stored->ttl_seconds, 1u);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    auto list = (*registry)->ListServices(Query("svc"), call_);
    ASSERT_THAT(list, IsOk());
    if (list->instances.empty()) break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  auto list = (*registry)->ListServices(Query("svc"), call_);
  ASSERT_THAT(list, IsOk());
  EXPECT_TRUE(list->instances.empty()) << "the 1 s lease never lapsed";
}

// ---------------------------------------------------------------------------
// Three members, one of which dies.

// Under steady registrations, heartbeats and lists, the member the registry
// talks to is killed (then the leader, if that was another): every
// registration that was acknowledged is still there, calls keep succeeding
// after a short election, and heartbeats keep the leases alive.
TEST_F(EtcdClusterTest, NothingAcknowledgedIsLostWhenMembersDie) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(3));
  auto registry = NewRegistry();
  ASSERT_NE(registry, nullptr);

  std::atomic<bool> stop{false};
  std::mutex mu;
  std::set<std::string> acknowledged;  // guarded by mu
  std::atomic<int> failures{0};
  std::atomic<int> successes_after_kill{0};
  std::atomic<bool> killed{false};
  CallOptions call;
  call.timeout = std::chrono::seconds(10);

  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; !stop.load(); ++i) {
        Instance in = TestInstance("w" + std::to_string(w) + "-" + std::to_string(i));
        in.ttl_seconds = 5;
        auto stored = registry->Register(in, call);
        if (stored.ok()) {
          std::lock_guard lock(mu);
          acknowledged.insert(in.id);
          if (killed.load()) successes_after_kill.fetch_add(1);
        } else {
          failures.fetch_add(1);
        }
        // Keep every acknowledged instance alive.
        std::vector<std::string> ids;
        {
          std::lock_guard lock(mu);
          for (const std::string& id : acknowledged) {
            if (id.starts_with("w" + std::to_string(w) + "-")) ids.push_back(id);
          }
        }
        for (const std::string& id : ids) {
          absl::Status beat = registry->UpdateService({"default", "svc", id}, call);
          if (!beat.ok()) failures.fetch_add(1);
        }
        std::this_thread::sleep_for(milliseconds(20));
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  // One member down at a time, so that a quorum remains: first the one the
  // registry talks to, then whichever leads.
  cluster_->Kill(0);
  killed = true;
  std::this_thread::sleep_for(std::chrono::seconds(1));
  ASSERT_THAT(cluster_->Restart(0), IsOk());
  absl::StatusOr<int> leader = cluster_->LeaderIndex(std::chrono::seconds(10));
  ASSERT_THAT(leader, IsOk());
  cluster_->Kill(*leader);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  ASSERT_THAT(cluster_->Restart(*leader), IsOk());
  std::this_thread::sleep_for(std::chrono::seconds(3));
  stop = true;
  for (auto& t : writers) t.join();

  EXPECT_GT(successes_after_kill.load(), 0) << "no registration succeeded after the kills";
  auto list = registry->ListServices(Query("svc"), call);
  ASSERT_THAT(list, IsOk());
  std::set<std::string> listed;
  for (const Instance& in : list->instances) listed.insert(in.id);
  std::lock_guard lock(mu);
  for (const std::string& id : acknowledged) {
    EXPECT_TRUE(listed.contains(id)) << id << " was acknowledged but is gone";
  }
  RecordProperty("acknowledged", static_cast<int>(acknowledged.size()));
  RecordProperty("failed_calls", failures.load());
}

// A subscription follows across the death of the member it watches through:
// a change made while it moves to another member arrives once, in order.
TEST_F(EtcdClusterTest, SubscriptionMovesToAnotherMemberWithoutGapOrDuplicate) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(3));
  auto watcher = NewRegistry();
  // The writer talks to member 2 only, which stays up.
  EtcdRegistryOptions writer_options = OptionsFor(*cluster_, "/muster");
  writer_options.endpoints = {cluster_->endpoint(2)};
  auto writer = NewEtcdRegistry(writer_options);
  ASSERT_NE(watcher, nullptr);
  ASSERT_THAT(writer, IsOk());

  UpdateRecorder recorder;
  auto id = watcher->Subscribe(Query("svc"), recorder.Callback());
  ASSERT_THAT(id, IsOk());
  ASSERT_TRUE(recorder.WaitForCount(1, kWait));
  ASSERT_THAT((*writer)->Register(TestInstance("before"), call_), IsOk());
  ASSERT_TRUE(recorder.WaitForChange([](const Change& c) { return c.instance.id == "before"; },
                                     kWait));

  cluster_->Kill(0);  // the watch's member
  ASSERT_THAT((*writer)->Register(TestInstance("during"), call_), IsOk());
  ASSERT_THAT((*writer)->Register(TestInstance("after"), call_), IsOk());
  ASSERT_TRUE(recorder.WaitForChange([](const Change& c) { return c.instance.id == "after"; },
                                     kWait))
      << "the subscription did not resume on another member";

  std::vector<std::string> ids;
  uint64_t last = 0;
  for (const Change& c : recorder.changes()) {
    ids.push_back(c.instance.id);
    EXPECT_GT(c.revision, last);
    last = c.revision;
  }
  EXPECT_THAT(ids, ElementsAre("before", "during", "after"));
  watcher->Unsubscribe(*id);
}

// A lease renewed through a member that dies is renewed through another:
// heartbeats keep the instance registered well past its TTL.
TEST_F(EtcdClusterTest, HeartbeatsMoveToAnotherMember) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(3));
  auto registry = NewRegistry();
  ASSERT_NE(registry, nullptr);
  Instance in = TestInstance("beating");
  in.ttl_seconds = 2;
  ASSERT_THAT(registry->Register(in, call_), IsOk());
  ASSERT_THAT(registry->UpdateService({"default", "svc", "beating"}, call_), IsOk());
  cluster_->Kill(0);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  int ok = 0;
  while (std::chrono::steady_clock::now() < until) {
    if (registry->UpdateService({"default", "svc", "beating"}, call_).ok()) ++ok;
    std::this_thread::sleep_for(milliseconds(300));
  }
  EXPECT_GT(ok, 10);
  auto list = registry->ListServices(Query("svc"), call_);
  ASSERT_THAT(list, IsOk());
  ASSERT_EQ(list->instances.size(), 1u) << "the instance expired although it heartbeat";
}

// ---------------------------------------------------------------------------
// etcd authentication.

// Turns on etcd auth with a root user (as `etcdctl auth enable` does).
void EnableAuth(EtcdCluster& cluster, const std::string& password) {
  auto auth = etcdserverpb::Auth::NewStub(cluster.Channel(0));
  auto call = [&](auto method, const auto& request, auto* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::Status status = (auth.get()->*method)(&context, request, response);
    ASSERT_TRUE(status.ok()) << status.error_message();
  };
  etcdserverpb::AuthRoleAddRequest role;
  role.set_name("root");
  etcdserverpb::AuthRoleAddResponse role_response;
  call(&etcdserverpb::Auth::Stub::RoleAdd, role, &role_response);
  etcdserverpb::AuthUserAddRequest user;
  user.set_name("root");
  user.set_password(password);
  etcdserverpb::AuthUserAddResponse user_response;
  call(&etcdserverpb::Auth::Stub::UserAdd, user, &user_response);
  etcdserverpb::AuthUserGrantRoleRequest grant;
  grant.set_user("root");
  grant.set_role("root");
  etcdserverpb::AuthUserGrantRoleResponse grant_response;
  call(&etcdserverpb::Auth::Stub::UserGrantRole, grant, &grant_response);
  etcdserverpb::AuthEnableResponse enabled;
  call(&etcdserverpb::Auth::Stub::AuthEnable, etcdserverpb::AuthEnableRequest(), &enabled);
}

TEST_F(EtcdClusterTest, AuthenticatesWithUserAndPassword) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(1));
  ASSERT_NO_FATAL_FAILURE(EnableAuth(*cluster_, "s3cret"));

  EtcdRegistryOptions options = OptionsFor(*cluster_, "/auth");
  options.username = "root";
  options.password = "wrong";
  auto refused = NewEtcdRegistry(options);
  EXPECT_FALSE(refused.ok());
  EXPECT_NE(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();

  options.password = "s3cret";
  auto registry = NewEtcdRegistry(options);
  ASSERT_THAT(registry, IsOk());
  ASSERT_THAT((*registry)->Register(TestInstance("a"), call_), IsOk());
  ASSERT_THAT((*registry)->UpdateService({"default", "svc", "a"}, call_), IsOk());
  UpdateRecorder recorder;
  auto id = (*registry)->Subscribe(Query("svc"), recorder.Callback());
  ASSERT_THAT(id, IsOk());
  ASSERT_TRUE(recorder.WaitForCount(1, kWait));
  EXPECT_THAT(IdsOf(recorder.updates()[0].instances), ElementsAre("a"));
  (*registry)->Unsubscribe(*id);

  // Without credentials nothing is readable.
  auto anonymous = NewEtcdRegistry(OptionsFor(*cluster_, "/auth"));
  if (anonymous.ok()) {
    EXPECT_FALSE((*anonymous)->ListServices(Query("svc"), call_).ok());
  }
}

}  // namespace
}  // namespace muster::testing
