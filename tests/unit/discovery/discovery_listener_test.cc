// Discovery::AddListener / RemoveListener: the hook that lets code keep
// something per instance (GrpcChannelPool's channels) in step with the cache
// without polling it.
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/base/thread_annotations.h"
#include "core/mutex.h"
#include "muster/discovery.h"
#include "support/status_matchers.h"
#include "unit/discovery/test_registry.h"

namespace muster {
namespace {

using ::muster::testing::Eventually;
using ::muster::testing::IsOk;
using ::muster::testing::MakeInstance;
using ::muster::testing::OverlayRegistry;
using ::muster::testing::ScriptedRegistry;
using ::muster::testing::Service;
using ::muster::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// What a listener heard: every snapshot (null ones included) and the thread
// of each call.
class Recorder {
 public:
  SnapshotListener Listener() {
    return [this](const std::shared_ptr<const ServiceSnapshot>& s) {
      MutexLock lock(mu_);
      heard_.push_back(s);
      threads_.push_back(std::this_thread::get_id());
    };
  }

  size_t calls() {
    MutexLock lock(mu_);
    return heard_.size();
  }
  std::shared_ptr<const ServiceSnapshot> last() {
    MutexLock lock(mu_);
    return heard_.empty() ? nullptr : heard_.back();
  }
  std::vector<std::shared_ptr<const ServiceSnapshot>> heard() {
    MutexLock lock(mu_);
    return heard_;
  }
  std::thread::id thread(size_t call) {
    MutexLock lock(mu_);
    return threads_.at(call);
  }
  // The ids of the last snapshot heard ("<null>" for a null one).
  std::vector<std::string> LastIds() {
    auto s = last();
    if (s == nullptr) return {"<null>"};
    std::vector<std::string> ids;
    for (const Instance& in : *s->instances) ids.push_back(in.id);
    return ids;
  }

 private:
  Mutex mu_;
  std::vector<std::shared_ptr<const ServiceSnapshot>> heard_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread::id> threads_ ABSL_GUARDED_BY(mu_);
};

class DiscoveryListenerTest : public ::testing::Test {
 protected:
  void Register(const std::string& id, int port) {
    ASSERT_THAT(memory_->Register(MakeInstance("orders", id, port), {}), IsOk());
  }
  void Deregister(const std::string& id) {
    ASSERT_THAT(memory_->Deregister({"default", "orders", id}, {}), IsOk());
  }

  std::unique_ptr<Registry> memory_ = NewMemoryRegistry();
  OverlayRegistry registry_{memory_.get()};
};

// The first call comes at once, on the calling thread, with the snapshot Get
// returns.
TEST_F(DiscoveryListenerTest, FirstCallIsTheCurrentSnapshotOnTheCallingThread) {
  Register("o1", 9001);
  Discovery discovery(&registry_, {});
  Recorder recorder;
  auto id = discovery.AddListener(Service("orders"), recorder.Listener());
  ASSERT_THAT(id, IsOk());
  ASSERT_EQ(recorder.calls(), 1u);
  EXPECT_EQ(recorder.thread(0), std::this_thread::get_id());
  EXPECT_THAT(recorder.LastIds(), ElementsAre("o1"));
  auto current = discovery.Get(Service("orders"));
  ASSERT_THAT(current, IsOk());
  EXPECT_EQ(recorder.last(), *current);
  discovery.RemoveListener(*id);
}

// Every later snapshot reaches the listener, in order, from the backend's
// thread, and it is the one Get returns by then.
TEST_F(DiscoveryListenerTest, HearsEveryChangeInOrder) {
  Register("o1", 9001);
  Discovery discovery(&registry_, {});
  Recorder recorder;
  auto id = discovery.AddListener(Service("orders"), recorder.Listener());
  ASSERT_THAT(id, IsOk());

  Register("o2", 9002);
  ASSERT_TRUE(Eventually([&] { return recorder.LastIds().size() == 2; }));
  EXPECT_THAT(recorder.LastIds(), ElementsAre("o1", "o2"));
  EXPECT_NE(recorder.thread(recorder.calls() - 1), std::this_thread::get_id());
  Deregister("o1");
  ASSERT_TRUE(Eventually([&] { return recorder.LastIds().size() == 1; }));
  EXPECT_THAT(recorder.LastIds(), ElementsAre("o2"));
  auto current = discovery.Get(Service("orders"));
  ASSERT_THAT(current, IsOk());
  EXPECT_EQ(recorder.last(), *current);

  uint64_t revision = 0;
  for (const auto& s : recorder.heard()) {
    ASSERT_NE(s, nullptr);
    EXPECT_GE(s->revision, revision);
    revision = s->revision;
  }
  discovery.RemoveListener(*id);
}

// After RemoveListener returns the listener hears nothing more; the others
// still hear every change. Unknown and removed ids are ignored.
TEST_F(DiscoveryListenerTest, RemovedListenerHearsNothingMore) {
  Register("o1", 9001);
  Discovery discovery(&registry_, {});
  Recorder removed;
  Recorder kept;
  auto removed_id = discovery.AddListener(Service("orders"), removed.Listener());
  auto kept_id = discovery.AddListener(Service("orders"), kept.Listener());
  ASSERT_THAT(removed_id, IsOk());
  ASSERT_THAT(kept_id, IsOk());
  EXPECT_NE(*removed_id, *kept_id);

  discovery.RemoveListener(*removed_id);
  discovery.RemoveListener(*removed_id);
  discovery.RemoveListener(987654321);
  Register("o2", 9002);
  // Listeners are called one after the other under one lock: once the kept
  // one has heard o2, the removed one would have too.
  ASSERT_TRUE(Eventually([&] { return kept.LastIds().size() == 2; }));
  EXPECT_EQ(removed.calls(), 1u);
  discovery.RemoveListener(*kept_id);
}

// A listener added on a thread that has ended (its lookup cache gone with
// it, as GrpcChannelPool's first call on a worker thread does) is still
// removed: neither a later update nor the Discovery's end reaches it.
TEST_F(DiscoveryListenerTest, AListenerAddedOnAnEndedThreadIsStillRemoved) {
  Register("o1", 9001);
  Discovery discovery(&registry_, {});
  Recorder recorder;
  absl::StatusOr<ListenerId> id;
  std::thread adder([&] {
    // Follows the service from this thread first, as a call would.
    ASSERT_THAT(discovery.Get(Service("orders")), IsOk());
    id = discovery.AddListener(Service("orders"), recorder.Listener());
  });
  adder.join();
  ASSERT_THAT(id, IsOk());
  EXPECT_EQ(recorder.calls(), 1u);
  discovery.RemoveListener(*id);
  Register("o2", 9002);
  ASSERT_TRUE(Eventually([&] {
    auto s = discovery.Get(Service("orders"));
    return s.ok() && (*s)->instances->size() == 2;
  }));
  EXPECT_EQ(recorder.calls(), 1u);
}

// Forget gives the listener a null snapshot on the forgetting thread and
// drops it; adding it again follows the service afresh.
TEST_F(DiscoveryListenerTest, ForgetSendsNullAndDropsTheListener) {
  Register("o1", 9001);
  Discovery discovery(&registry_, {});
  Recorder recorder;
  auto id = discovery.AddListener(Service("orders"), recorder.Listener());
  ASSERT_THAT(id, IsOk());

  discovery.Forget(Service("orders"));
  ASSERT_EQ(recorder.calls(), 2u);
  EXPECT_EQ(recorder.last(), nullptr);
  EXPECT_EQ(recorder.thread(1), std::this_thread::get_id());
  discovery.RemoveListener(*id);  // already gone: ignored

  Register("o2", 9002);
  Recorder again;
  auto again_id = discovery.AddListener(Service("orders"), again.Listener());
  ASSERT_THAT(again_id, IsOk());
  EXPECT_THAT(again.LastIds(), ElementsAre("o1", "o2"));
  EXPECT_EQ(recorder.calls(), 2u);
  discovery.RemoveListener(*again_id);
}

// Destroying the Discovery ends its listeners the same way.
TEST_F(DiscoveryListenerTest, DestructionSendsNull) {
  Register("o1", 9001);
  Recorder recorder;
  {
    Discovery discovery(&registry_, {});
    ASSERT_THAT(discovery.AddListener(Service("orders"), recorder.Listener()), IsOk());
  }
  ASSERT_EQ(recorder.calls(), 2u);
  EXPECT_EQ(recorder.last(), nullptr);
}

// A listed snapshot marked stale (the registry became unreachable) reaches
// the listener too.
TEST_F(DiscoveryListenerTest, HearsTheStaleMark) {
  Register("o1", 9001);
  Discovery discovery(&registry_, {});
  Recorder recorder;
  auto id = discovery.AddListener(Service("orders"), recorder.Listener());
  ASSERT_THAT(id, IsOk());
  registry_.InjectOutage(absl::UnavailableError("registry down"));
  ASSERT_TRUE(Eventually([&] { return recorder.calls() == 2; }));
  ASSERT_NE(recorder.last(), nullptr);
  EXPECT_TRUE(recorder.last()->stale);
  EXPECT_THAT(recorder.LastIds(), ElementsAre("o1"));
  discovery.RemoveListener(*id);
}

// Without a first list AddListener fails as Get does and the listener is
// never called.
TEST_F(DiscoveryListenerTest, FailsAsGetDoesWithoutAFirstList) {
  ScriptedRegistry scripted;
  DiscoveryOptions options;
  options.first_list_timeout = std::chrono::milliseconds(1);
  Discovery discovery(&scripted, options);
  Recorder recorder;
  EXPECT_THAT(discovery.AddListener(Service("orders"), recorder.Listener()),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("no list of orders")));
  EXPECT_THAT(discovery.AddListener(ServiceQuery{}, recorder.Listener()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no service")));

  // Once a list came it succeeds; the failed attempts left nothing behind.
  WatchUpdate list;
  list.snapshot = true;
  list.revision = 3;
  scripted.Deliver(list);
  auto id = discovery.AddListener(Service("orders"), recorder.Listener());
  ASSERT_THAT(id, IsOk());
  ASSERT_EQ(recorder.calls(), 1u);
  EXPECT_THAT(*recorder.last()->instances, IsEmpty());
  EXPECT_EQ(recorder.last()->revision, 3u);
  discovery.RemoveListener(*id);
}

}  // namespace
}  // namespace muster
