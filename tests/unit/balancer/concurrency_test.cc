// Every policy under concurrent Picks and Updates: never a crash, and every
// pick is an enabled instance of one of the published lists. Run under
// TSan and ASan by `make test-sanitize`.
#include <atomic>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "unit/balancer/balancer_test_util.h"

namespace muster {
namespace {

using testing::ListOf;
using testing::MakeInstance;
using testing::MustNew;
using testing::TableSize;

class ConcurrencyTest : public ::testing::TestWithParam<std::string_view> {};

INSTANTIATE_TEST_SUITE_P(Policies, ConcurrencyTest, ::testing::ValuesIn(BalancerPolicies()),
                         [](const auto& test) { return std::string(test.param); });

// Several threads pick (and report Done) while another keeps replacing the
// list; a second balancer shares the threads' caches meanwhile.
TEST_P(ConcurrencyTest, PicksDuringUpdatesReturnPublishedInstances) {
  // Lists of different sizes, weights and disabled instances; ids overlap,
  // so least_request carries counts across them.
  std::vector<InstanceList> lists;
  for (int variant = 0; variant < 4; ++variant) {
    std::vector<Instance> instances;
    for (int i = 0; i < 5 + 7 * variant; ++i) {
      instances.push_back(MakeInstance("i" + std::to_string(i + 3 * variant), 50 + 50 * (i % 4),
                                       (i + variant) % 5 == 0 ? InstanceStatus::kDisabled
                                                              : InstanceStatus::kEnabled));
    }
    lists.push_back(ListOf(std::move(instances)));
  }
  std::set<const std::vector<Instance>*> published;
  for (const auto& list : lists) published.insert(list.get());

  auto balancer = MustNew(GetParam());
  auto neighbour = MustNew(GetParam());
  balancer->Update(lists[0]);
  neighbour->Update(lists[1]);

  constexpr int kThreads = 4;
  constexpr int kPicksPerThread = 20000;
  std::atomic<bool> picking{true};
  std::atomic<int> failures{0};
  std::thread updater([&] {
    for (int round = 0; picking.load(); ++round) {
      balancer->Update(lists[round % lists.size()]);
      if (round % 7 == 0) neighbour->Update(lists[(round / 7) % lists.size()]);
      std::this_thread::yield();
    }
  });
  std::vector<std::thread> pickers;
  for (int t = 0; t < kThreads; ++t) {
    pickers.emplace_back([&, t] {
      for (int i = 0; i < kPicksPerThread; ++i) {
        PickRequest request = testing::Key(uint64_t(i) * 0x9e3779b97f4a7c15ULL + t);
        if (i % 5 == 0) request.excluded = [](const Instance& in) { return in.id == "i4"; };
        Balancer& target = i % 3 == 0 ? *neighbour : *balancer;
        auto picked = target.Pick(request);
        if (!picked.ok()) {
          ++failures;
          continue;
        }
        const bool valid = published.contains(picked->list().get()) &&
                           picked->index() < picked->list()->size() &&
                           &picked->instance() == &(*picked->list())[picked->index()] &&
                           picked->instance().status == InstanceStatus::kEnabled &&
                           !(request.excluded && picked->instance().id == "i4");
        if (!valid) ++failures;
        target.Done(*picked, i % 2 == 0);
      }
    });
  }
  for (auto& picker : pickers) picker.join();
  picking = false;
  updater.join();
  EXPECT_EQ(failures.load(), 0);
}

// Balancers created and destroyed while threads pick from others leave no
// dangling state in the threads' caches.
TEST_P(ConcurrencyTest, ShortLivedBalancersAreSafe) {
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 100; ++round) {
        // A small Maglev table: building the default one 300 times is slow
        // under sanitizers and adds nothing here.
        auto balancer = MustNew(GetParam(), TableSize(1009));
        balancer->Update(testing::Uniform(3 + (round + t) % 5));
        for (int i = 0; i < 20; ++i) {
          auto picked = balancer->Pick(testing::Key(uint64_t(i)));
          if (!picked.ok()) ++failures;
          else balancer->Done(*picked, true);
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace muster
