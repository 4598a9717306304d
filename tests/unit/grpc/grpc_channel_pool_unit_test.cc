#include "muster/grpc_channel_pool.h"

#include <memory>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "muster/discovery.h"
#include "muster/registry.h"
#include "support/status_matchers.h"
#include "unit/discovery/test_registry.h"

namespace muster {
namespace {

using ::muster::testing::Eventually;
using ::muster::testing::IsOk;
using ::muster::testing::MakeInstance;
using ::muster::testing::Service;

// Every canonical code keeps its name and number both ways.
TEST(GrpcStatusTest, CodesAndMessagesConvertBothWays) {
  for (int code = 1; code <= 16; ++code) {
    SCOPED_TRACE(code);
    grpc::Status g(static_cast<grpc::StatusCode>(code), "why");
    absl::Status a = FromGrpcStatus(g);
    EXPECT_EQ(static_cast<int>(a.code()), code);
    EXPECT_EQ(a.message(), "why");
    grpc::Status back = ToGrpcStatus(a);
    EXPECT_EQ(back.error_code(), g.error_code());
    EXPECT_EQ(back.error_message(), "why");
  }
  EXPECT_EQ(FromGrpcStatus(grpc::Status(grpc::StatusCode::UNAVAILABLE, "x")).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(ToGrpcStatus(absl::DeadlineExceededError("x")).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  // Outside the canonical range: UNKNOWN, the message kept.
  absl::Status odd = FromGrpcStatus(grpc::Status(static_cast<grpc::StatusCode>(99), "odd"));
  EXPECT_EQ(odd.code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(odd.message(), "odd");
}

class GrpcChannelPoolUnitTest : public ::testing::Test {
 protected:
  void Register(const Instance& in) { ASSERT_THAT(registry_->Register(in, {}), IsOk()); }
  size_t Known() {
    auto s = discovery_.Get(Service("greeter"));
    return s.ok() ? (*s)->instances->size() : 0;
  }

  std::unique_ptr<Registry> registry_ = NewMemoryRegistry();
  Discovery discovery_{registry_.get(), {}};
};

GrpcChannelPoolOptions Quiet() {
  GrpcChannelPoolOptions options;
  options.connect_at_once = false;  // nothing listens at these addresses
  return options;
}

// A channel per address and credentials: instances at one address with the
// same credentials share one; other credentials get their own.
TEST_F(GrpcChannelPoolUnitTest, OneChannelPerAddressAndCredentials) {
  auto tls = grpc::InsecureChannelCredentials();  // stands for other credentials
  GrpcChannelPoolOptions options = Quiet();
  options.credentials_for = [tls](const Instance& in) -> std::shared_ptr<grpc::ChannelCredentials> {
    return in.metadata.count("tls") ? tls : nullptr;
  };
  GrpcChannelPool pool(&discovery_, options);
  Register(MakeInstance("greeter", "a", 1));
  Instance a2 = MakeInstance("greeter", "a2", 1);
  Register(a2);
  Instance a_tls = MakeInstance("greeter", "a-tls", 1);
  a_tls.metadata["tls"] = "on";
  Register(a_tls);
  Register(MakeInstance("greeter", "b", 2));
  ASSERT_THAT(pool.Follow(Service("greeter")), IsOk());
  EXPECT_EQ(pool.channel_count(), 3u);

  auto shared = pool.Channel(MakeInstance("greeter", "a", 1));
  EXPECT_EQ(pool.Channel(a2), shared);
  EXPECT_NE(pool.Channel(a_tls), shared);
  EXPECT_EQ(pool.Channel(a_tls), pool.Channel(a_tls));
}

// Only the instances Discovery hands out get channels: not disabled ones;
// an instance that is disabled later loses its channel.
TEST_F(GrpcChannelPoolUnitTest, OnlyHealthyInstancesHaveChannels) {
  GrpcChannelPool pool(&discovery_, Quiet());
  Register(MakeInstance("greeter", "a", 1));
  Instance off = MakeInstance("greeter", "b", 2);
  off.status = InstanceStatus::kDisabled;
  Register(off);
  ASSERT_THAT(pool.Follow(Service("greeter")), IsOk());
  EXPECT_EQ(pool.channel_count(), 1u);

  Instance a_off = MakeInstance("greeter", "a", 1);
  a_off.status = InstanceStatus::kDisabled;
  Register(a_off);
  EXPECT_TRUE(Eventually([&] { return pool.channel_count() == 0; }));
  off.status = InstanceStatus::kEnabled;
  Register(off);
  EXPECT_TRUE(Eventually([&] { return pool.channel_count() == 1; }));
}

// An instance that moves to another address gets a channel there; the old
// one goes.
TEST_F(GrpcChannelPoolUnitTest, MovedInstanceGetsANewChannel) {
  GrpcChannelPool pool(&discovery_, Quiet());
  Register(MakeInstance("greeter", "a", 1));
  ASSERT_THAT(pool.Follow(Service("greeter")), IsOk());
  auto before = pool.Channel(MakeInstance("greeter", "a", 1));
  Register(MakeInstance("greeter", "a", 2));
  ASSERT_TRUE(Eventually([&] {
    auto s = discovery_.Get(Service("greeter"));
    return s.ok() && (*s)->instances->size() == 1 &&
           (*s)->instances->front().address == "127.0.0.1:2";
  }));
  // Held (the same channel each time) once the pool applied the update.
  const Instance at2 = MakeInstance("greeter", "a", 2);
  EXPECT_TRUE(Eventually([&] { return pool.Channel(at2) == pool.Channel(at2); }));
  EXPECT_NE(pool.Channel(at2), before);
  EXPECT_EQ(pool.channel_count(), 1u);
  // The old address is no longer held: each ask gets a channel of its own.
  const Instance at1 = MakeInstance("greeter", "a", 1);
  EXPECT_NE(pool.Channel(at1), pool.Channel(at1));
}

// Destroying the pool removes its listeners: the Discovery goes on without it.
TEST_F(GrpcChannelPoolUnitTest, DestroyedPoolLeavesDiscoveryWorking) {
  Register(MakeInstance("greeter", "a", 1));
  {
    GrpcChannelPool pool(&discovery_, Quiet());
    ASSERT_THAT(pool.Follow(Service("greeter")), IsOk());
  }
  Register(MakeInstance("greeter", "b", 2));
  EXPECT_TRUE(Eventually([&] { return Known() == 2; }));
  EXPECT_THAT(discovery_.Pick(Service("greeter")), IsOk());
}

}  // namespace
}  // namespace muster
