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
  void RegisterAll(size_t n) {
    for (size_t i = 0; i < n; ++i) {
      auto r = Register("svc", "i" + std::to_string(i),
                        RegisterBody("127.0.0.1:9000", {{"ttl_seconds", 1}}));
      ASSERT_EQ(r.status, 201) << r.body;
    }
  }
  bool SelfPreserving() {
    return JsonOf(Must(client().Get("/healthz"))).at("self_preservation").as_bool();
  }
};

// Leases lapsing one sweep apart (a loaded machine registers slowly) may
// expire until more than the threshold's share (0.5) has lapsed within the
// window; from then on nothing expires. So at least half of the ten stay,
// stay while held, and their heartbeats succeed.
TEST_F(SelfPreservationTest, MassLapseIsHeldAndReported) {
  constexpr size_t kLeases = 10;
  ASSERT_NO_FATAL_FAILURE(RegisterAll(kLeases));
  bool held = false;
  for (int i = 0; i < 100 && !held; ++i) {  // up to 5 s
    std::this_thread::sleep_for(milliseconds(50));
    held = SelfPreserving();
  }
  ASSERT_TRUE(held) << "self-preservation never engaged";
  const std::vector<std::string> kept = List("svc").ids();
  EXPECT_GE(kept.size(), kLeases / 2);
  // Held: several TTLs later the same instances are listed.
  std::this_thread::sleep_for(milliseconds(1500));
  EXPECT_TRUE(SelfPreserving());
  EXPECT_EQ(List("svc").ids(), kept);
  // Heartbeats return: the held leases are alive again.
  for (const std::string& id : kept) EXPECT_EQ(Heartbeat("svc", id).status, 200) << id;
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
