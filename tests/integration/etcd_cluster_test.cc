// The EtcdCluster fixture against a real etcd: members serve linearizable reads
// and writes through any member, a killed leader is replaced by one of the
// survivors, and a restarted member catches up on what it missed.
#include "support/etcd_cluster.h"

#include <chrono>
#include <iostream>
#include <memory>
#include <string>

#include <grpcpp/client_context.h>
#include <gtest/gtest.h>

#include "rpc.grpc.pb.h"
#include "rpc.pb.h"
#include "support/musterd_process.h"

namespace muster::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

constexpr auto kRpcTimeout = seconds(5);

class EtcdClusterTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure() && cluster_ != nullptr) {
      std::cerr << "---- etcd output ----\n"
                << cluster_->Logs() << "---- end of etcd output ----\n";
    }
  }

  void StartCluster(int members) {
    const auto started = Clock::now();
    EtcdClusterOptions options;
    options.members = members;
    auto cluster = EtcdCluster::Start(options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    std::cerr << "[ etcd ] " << members << " member(s) serving after " << Since(started).count()
              << " ms at " << cluster_->EndpointList() << "\n";
  }

  static milliseconds Since(Clock::time_point start) {
    return std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  }

  // Puts key=value through member i; the revision of the write.
  int64_t Put(int i, const std::string& key, const std::string& value) {
    auto kv = etcdserverpb::KV::NewStub(cluster_->Channel(i));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
    etcdserverpb::PutRequest request;
    request.set_key(key);
    request.set_value(value);
    etcdserverpb::PutResponse response;
    grpc::Status status = kv->Put(&context, request, &response);
    EXPECT_TRUE(status.ok()) << "Put via m" << i << ": " << status.error_message();
    return status.ok() ? response.header().revision() : -1;
  }

  // A linearizable Range of `key` through member i.
  etcdserverpb::RangeResponse Get(int i, const std::string& key) {
    auto kv = etcdserverpb::KV::NewStub(cluster_->Channel(i));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
    etcdserverpb::RangeRequest request;
    request.set_key(key);
    etcdserverpb::RangeResponse response;
    grpc::Status status = kv->Range(&context, request, &response);
    EXPECT_TRUE(status.ok()) << "Range via m" << i << ": " << status.error_message();
    return response;
  }

  std::unique_ptr<EtcdCluster> cluster_;
};

TEST_F(EtcdClusterTest, ThreeMembersSurviveLeaderCrashAndRestart) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(3));
  ASSERT_EQ(cluster_->size(), 3);
  ASSERT_EQ(cluster_->endpoints().size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(cluster_->running(i));
    EXPECT_NE(cluster_->member_id(i), 0u);
  }

  // A write through m0 is visible to a linearizable read through m2.
  const int64_t first = Put(0, "/muster-test/key", "v1");
  ASSERT_GT(first, 0);
  etcdserverpb::RangeResponse read = Get(2, "/muster-test/key");
  ASSERT_EQ(read.kvs_size(), 1);
  EXPECT_EQ(read.kvs(0).value(), "v1");
  EXPECT_EQ(read.kvs(0).mod_revision(), first);

  absl::StatusOr<int> leader = cluster_->LeaderIndex(seconds(5));
  ASSERT_TRUE(leader.ok()) << leader.status();
  const int old_leader = *leader;

  // Kill the leader: the other two elect one of themselves.
  const auto killed = Clock::now();
  cluster_->Kill(old_leader);
  EXPECT_FALSE(cluster_->running(old_leader));
  absl::StatusOr<int> new_leader = cluster_->LeaderIndex(seconds(10));
  ASSERT_TRUE(new_leader.ok()) << new_leader.status();
  std::cerr << "[ etcd ] m" << old_leader << " killed; m" << *new_leader << " leads after "
            << Since(killed).count() << " ms\n";
  EXPECT_NE(*new_leader, old_leader);
  EXPECT_TRUE(cluster_->running(*new_leader));

  // A write through the surviving follower (forwarded to the new leader).
  const int follower = 3 - old_leader - *new_leader;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto stub = etcdserverpb::Maintenance::NewStub(cluster_->Channel(follower));
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + milliseconds(500));
        etcdserverpb::StatusResponse status;
        return stub->Status(&context, etcdserverpb::StatusRequest(), &status).ok() &&
               status.leader() == cluster_->member_id(*new_leader);
      },
      seconds(5)))
      << "m" << follower << " never learned that m" << *new_leader << " leads";
  const int64_t second = Put(follower, "/muster-test/key", "v2");
  ASSERT_GT(second, first);

  // The killed member comes back on its data and catches up.
  const auto restarted = Clock::now();
  absl::Status restart = cluster_->Restart(old_leader);
  ASSERT_TRUE(restart.ok()) << restart;
  std::cerr << "[ etcd ] m" << old_leader << " serving again after " << Since(restarted).count()
            << " ms\n";
  EXPECT_TRUE(cluster_->running(old_leader));
  read = Get(old_leader, "/muster-test/key");
  ASSERT_EQ(read.kvs_size(), 1);
  EXPECT_EQ(read.kvs(0).value(), "v2");
  EXPECT_EQ(read.kvs(0).mod_revision(), second);
  EXPECT_GE(read.header().revision(), second);
}

TEST_F(EtcdClusterTest, OneMemberClusterServes) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(1));
  ASSERT_EQ(cluster_->size(), 1);
  EXPECT_EQ(cluster_->EndpointList(), cluster_->endpoint(0));
  EXPECT_EQ(cluster_->EndpointList().rfind("127.0.0.1:", 0), 0u) << cluster_->EndpointList();

  absl::StatusOr<int> leader = cluster_->LeaderIndex(seconds(5));
  ASSERT_TRUE(leader.ok()) << leader.status();
  EXPECT_EQ(*leader, 0);

  const int64_t revision = Put(0, "/muster-test/solo", "alone");
  ASSERT_GT(revision, 0);
  etcdserverpb::RangeResponse read = Get(0, "/muster-test/solo");
  ASSERT_EQ(read.kvs_size(), 1);
  EXPECT_EQ(read.kvs(0).value(), "alone");

  // SIGTERM: etcd shuts down cleanly, then re-raises the signal.
  const int code = cluster_->Terminate(0);
  EXPECT_EQ(code, 128 + 15) << "exit code " << code;
  EXPECT_FALSE(cluster_->running(0));
  absl::Status restart = cluster_->Restart(0);
  ASSERT_TRUE(restart.ok()) << restart;
  read = Get(0, "/muster-test/solo");
  ASSERT_EQ(read.kvs_size(), 1);
  EXPECT_EQ(read.kvs(0).mod_revision(), revision);
}

TEST_F(EtcdClusterTest, MoveLeaderHandsLeadershipOver) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(3));
  absl::StatusOr<int> leader = cluster_->LeaderIndex(seconds(5));
  ASSERT_TRUE(leader.ok()) << leader.status();
  const int target = (*leader + 1) % 3;
  absl::Status moved = cluster_->MoveLeader(target);
  ASSERT_TRUE(moved.ok()) << moved;
  leader = cluster_->LeaderIndex(seconds(5));
  ASSERT_TRUE(leader.ok()) << leader.status();
  EXPECT_EQ(*leader, target);
  EXPECT_GT(Put(*leader, "/muster-test/moved", "yes"), 0);
}

TEST_F(EtcdClusterTest, ReportsAMemberThatCannotStart) {
  EtcdClusterOptions options;
  options.members = 3;
  options.binary = "/nonexistent/etcd";
  auto cluster = EtcdCluster::Start(options);
  ASSERT_FALSE(cluster.ok());
  EXPECT_EQ(cluster.status().code(), absl::StatusCode::kUnavailable) << cluster.status();
  EXPECT_NE(cluster.status().message().find("m0 exited (exit code 127)"), absl::string_view::npos)
      << cluster.status();
  EXPECT_NE(cluster.status().message().find("exec of etcd failed"), absl::string_view::npos)
      << cluster.status();
}

TEST_F(EtcdClusterTest, RejectsAnEmptyCluster) {
  EtcdClusterOptions options;
  options.members = 0;
  auto cluster = EtcdCluster::Start(options);
  EXPECT_EQ(cluster.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace muster::testing
