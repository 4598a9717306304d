// The conformance suite every muster::Registry backend must pass: revisions,
// idempotent registration, listing, leases, subscriptions, validation and
// Close, asserted with specific status codes. A backend instantiates it with
// a harness that sets up its environment and makes registries.
//
// Example (memory backend):
//   INSTANTIATE_TEST_SUITE_P(
//       Memory, RegistryConformanceTest,
//       ::testing::Values(muster::testing::BackendFromFactory(
//           "memory", [] { return muster::NewMemoryRegistry(); })),
//       muster::testing::BackendName);
//
// Backends run in real time: leases are 1 s and every wait is bounded. A
// backend with an injectable clock overrides RegistryHarness::AdvanceTime.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "muster/registry.h"

namespace muster::testing {

// One backend under test.
class RegistryHarness {
 public:
  virtual ~RegistryHarness() = default;
  // Prepares the backend (e.g. starts a server); runs on the test's thread.
  virtual absl::Status SetUp() { return absl::OkStatus(); }
  // A new registry on the backend; registries of one harness share its state
  // when the backend is a server.
  virtual std::unique_ptr<Registry> NewRegistry() = 0;
  // Lets `duration` of lease time pass. Real-time backends sleep.
  virtual void AdvanceTime(std::chrono::milliseconds duration);
  // Printed when a test fails (e.g. the server's log).
  virtual std::string Diagnostics() const { return ""; }
};

struct RegistryBackend {
  std::string name;  // test name suffix: letters, digits and '_'
  std::function<std::unique_ptr<RegistryHarness>()> make_harness;
};

// Prints the backend's name (test names and messages show it, not its bytes).
void PrintTo(const RegistryBackend& backend, std::ostream* os);

// A backend with no environment: registries from `factory`, real time.
RegistryBackend BackendFromFactory(std::string name,
                                   std::function<std::unique_ptr<Registry>()> factory);

// For INSTANTIATE_TEST_SUITE_P's name generator.
std::string BackendName(const ::testing::TestParamInfo<RegistryBackend>& info);

// Records what a subscription delivers, for waiting on it from the test thread.
class UpdateRecorder {
 public:
  // The callback to subscribe with; the recorder must outlive the subscription.
  WatchCallback Callback();

  // Waits up to `timeout` until `predicate` holds for the updates so far.
  bool WaitUntil(const std::function<bool(const std::vector<WatchUpdate>&)>& predicate,
                 std::chrono::milliseconds timeout);
  // Waits until at least `n` updates arrived.
  bool WaitForCount(size_t n, std::chrono::milliseconds timeout);
  // Waits until the changes delivered (outside snapshots) include one
  // matching `predicate`.
  bool WaitForChange(const std::function<bool(const Change&)>& predicate,
                     std::chrono::milliseconds timeout);

  std::vector<WatchUpdate> updates() const;
  // Every change of every OK non-snapshot update, in delivery order.
  std::vector<Change> changes() const;
  // The instances a subscriber holds after applying every update, by id.
  std::map<std::string, Instance> View() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<WatchUpdate> updates_;  // guarded by mu_
};

// A test instance: service "svc" in the default namespace, address 127.0.0.1:9000.
Instance TestInstance(std::string id, std::string service = "svc", std::string version = "");
// The same in service "svc", carrying `tags`.
Instance TaggedInstance(std::string id, std::vector<std::string> tags, std::string version = "");

// A query of `service` (one version when given) in namespace `ns`.
ServiceQuery Query(std::string service, std::string version = "",
                   std::string ns = std::string(kDefaultNamespace));

std::vector<std::string> IdsOf(const std::vector<Instance>& instances);
// The types, and the instance ids, of `changes`, in order.
std::vector<ChangeType> TypesOf(const std::vector<Change>& changes);
std::vector<std::string> ChangedIds(const std::vector<Change>& changes);
// Whether any update reports a failed subscription.
bool HasFailedUpdate(const std::vector<WatchUpdate>& updates);

class RegistryConformanceTest : public ::testing::TestWithParam<RegistryBackend> {
 protected:
  void SetUp() override;
  void TearDown() override;

  // The registry every test starts with.
  Registry& registry() { return *registry_; }
  // Another registry on the same backend.
  Registry& NewRegistry();
  // A recorder that lives as long as the test's registries.
  UpdateRecorder& NewRecorder();
  RegistryHarness& harness() { return *harness_; }

  static constexpr std::chrono::milliseconds kWait{10000};
  CallOptions call_;

 private:
  std::unique_ptr<RegistryHarness> harness_;
  // Recorders are declared before the registries so that they outlive them.
  std::vector<std::unique_ptr<UpdateRecorder>> recorders_;
  std::vector<std::unique_ptr<Registry>> registries_;
  Registry* registry_ = nullptr;
};

}  // namespace muster::testing
