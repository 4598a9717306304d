// Self-preservation end to end: a real musterd whose every lease lapses at
// once keeps its instances and says so in /healthz; with the threshold at 0
// it expires them as usual.
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "integration/musterd_fixture.h"

namespace muster::testing {
namespace {

using std::chrono::milliseconds;

class SelfPreservationTest : public MusterdTest {
 protected:
  std::vector<std::string> MusterdArgs() const override {
    return {"--self-preservation-min-leases", "5"};
  }
  void RegisterAll(int n) {
    for (int i = 0; i < n; ++i) {
      auto r = Register("svc", "i" + std::to_string(i),
                        RegisterBody("127.0.0.1:9000", {{"ttl_seconds", 1}}));
      ASSERT_EQ(r.status, 201) << r.body;
    }
  }
  bool SelfPreserving() {
    return JsonOf(Must(client().Get("/healthz"))).at("self_preservation").as_bool();
  }
};

TEST_F(SelfPreservationTest, MassLapseIsHeldAndReported) {
  ASSERT_NO_FATAL_FAILURE(RegisterAll(6));
  EXPECT_FALSE(SelfPreserving());
  bool held = false;
  for (int i = 0; i < 100 && !held; ++i) {  // up to 5 s
    std::this_thread::sleep_for(milliseconds(50));
    held = SelfPreserving();
  }
  ASSERT_TRUE(held) << "self-preservation never engaged";
  EXPECT_EQ(List("svc").instances.size(), 6u);
  // Heartbeats return: the held leases are alive again.
  for (int i = 0; i < 6; ++i) EXPECT_EQ(Heartbeat("svc", "i" + std::to_string(i)).status, 200);
}

class NoSelfPreservationTest : public SelfPreservationTest {
 protected:
  std::vector<std::string> MusterdArgs() const override {
    return {"--self-preservation-threshold", "0"};
  }
};

TEST_F(NoSelfPreservationTest, ThresholdZeroExpiresAsUsual) {
  ASSERT_NO_FATAL_FAILURE(RegisterAll(12));
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    std::this_thread::sleep_for(milliseconds(50));
    gone = List("svc").instances.empty();
  }
  EXPECT_TRUE(gone);
  EXPECT_FALSE(SelfPreserving());
}

}  // namespace
}  // namespace muster::testing
