// The fixture of the cluster-mode tests: a real three-member etcd cluster
// on loopback and two musterd nodes on it (--store etcd), with a client for
// each; every log is printed when a test fails.
#pragma once

#include <chrono>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/wire/http_client.h"
#include "support/api_helpers.h"
#include "support/etcd_cluster.h"
#include "support/musterd_process.h"

namespace muster::testing {

using std::chrono::milliseconds;

inline constexpr milliseconds kWait{15000};

class ClusterFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    EtcdClusterOptions options;
    options.members = 3;
    auto cluster = EtcdCluster::Start(options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    etcd_ = *std::move(cluster);
    for (int i = 0; i < 2; ++i) {
      nodes_.push_back(std::make_unique<MusterdProcess>(MUSTERD_PATH));
      absl::Status started = nodes_.back()->Start(NodeArgs());
      ASSERT_TRUE(started.ok()) << started;
      clients_.push_back(std::make_unique<wire::HttpClient>(nodes_.back()->address()));
    }
  }

  void TearDown() override {
    if (!HasFailure()) return;
    for (size_t i = 0; i < nodes_.size(); ++i) {
      std::cerr << "---- musterd node " << i << " ----\n" << nodes_[i]->Logs();
    }
    if (etcd_ != nullptr) std::cerr << "---- etcd ----\n" << etcd_->Logs();
  }

  std::vector<std::string> NodeArgs() const {
    return {"--store",       "etcd",          "--etcd-endpoints", etcd_->EndpointList(),
            "--etcd-prefix", "/cluster-test", "--election-ttl",   "2s"};
  }

  wire::HttpClient& node(int i) { return *clients_[i]; }

  ListResult List(int i, const std::string& service) {
    return ParseList(Must(node(i).Get(ListPath(service))));
  }

  // Polls `condition` until it holds; false after kWait.
  static bool WaitFor(const std::function<bool()>& condition) {
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    while (std::chrono::steady_clock::now() < deadline) {
      if (condition()) return true;
      std::this_thread::sleep_for(milliseconds(20));
    }
    return false;
  }

  // Polls node i's list until `predicate` holds; false after kWait.
  bool WaitForList(int i, const std::string& service,
                   const std::function<bool(const ListResult&)>& predicate) {
    return WaitFor([&] {
      auto list = node(i).Get(ListPath(service));
      return list.ok() && list->status == 200 && predicate(ParseList(*list));
    });
  }

  bool Leading(int i) { return JsonOf(Must(node(i).Get("/healthz"))).at("leader").as_bool(); }

  // The node that leads, once exactly one does; -1 (and a failure) after kWait.
  int Leader() {
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    while (std::chrono::steady_clock::now() < deadline) {
      const bool a = Leading(0);
      const bool b = Leading(1);
      EXPECT_FALSE(a && b) << "two leaders";
      if (a != b) return a ? 0 : 1;
      std::this_thread::sleep_for(milliseconds(50));
    }
    ADD_FAILURE() << "no node became leader";
    return -1;
  }

  std::unique_ptr<EtcdCluster> etcd_;
  std::vector<std::unique_ptr<MusterdProcess>> nodes_;
  std::vector<std::unique_ptr<wire::HttpClient>> clients_;
};

}  // namespace muster::testing
