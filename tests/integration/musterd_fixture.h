// The fixture of the integration tests: a real musterd per test case, started
// on 127.0.0.1 port 0 with a fresh data directory, and a client for it. When a
// test fails, musterd's output is printed.
#pragma once

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/wire/http_client.h"
#include "support/api_helpers.h"
#include "support/musterd_process.h"

namespace muster::testing {

class MusterdTest : public ::testing::Test {
 protected:
  MusterdTest() : musterd_(MUSTERD_PATH) {}

  // Flags beyond --listen and --data-dir; a fixture overrides this to change them.
  virtual std::vector<std::string> MusterdArgs() const { return {}; }

  void SetUp() override {
    absl::Status started = musterd_.Start(MusterdArgs());
    ASSERT_TRUE(started.ok()) << started;
    Reconnect();
  }

  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "---- musterd output (" << musterd_.data_dir() << ") ----\n"
                << musterd_.Logs() << "---- end of musterd output ----\n";
    }
  }

  // A fresh client for the current address (after a restart the port is new).
  void Reconnect() { client_ = std::make_unique<wire::HttpClient>(musterd_.address()); }

  wire::HttpClient& client() { return *client_; }

  wire::HttpResponse Register(const std::string& service, const std::string& id,
                                const std::string& body, const std::string& query = "") {
    return Must(client_->Put(InstancePath(service, id, query), body));
  }

  wire::HttpResponse Deregister(const std::string& service, const std::string& id,
                                  const std::string& query = "") {
    return Must(client_->Delete(InstancePath(service, id, query)));
  }

  wire::HttpResponse Heartbeat(const std::string& service, const std::string& id,
                                 const std::string& query = "") {
    return Must(client_->Put(HeartbeatPath(service, id, query), ""));
  }

  ListResult List(const std::string& service, const std::string& query = "") {
    return ParseList(Must(client_->Get(ListPath(service, query))));
  }

  // The registry's current revision, from /healthz.
  uint64_t CurrentRevision() {
    wire::HttpResponse r = Must(client_->Get("/healthz"));
    EXPECT_EQ(r.status, 200) << r.body;
    boost::json::value v = JsonOf(r);
    if (!v.is_object() || !v.as_object().contains("revision")) {
      ADD_FAILURE() << "healthz has no revision: " << r.body;
      return 0;
    }
    return U64(v.as_object().at("revision"));
  }

  // Opens a watch on `target` (e.g. "/api/v1/watch?service=orders").
  std::unique_ptr<wire::SseStream> Watch(
      const std::string& target, std::vector<std::pair<std::string, std::string>> headers = {}) {
    auto stream = wire::SseStream::Open(musterd_.address(), target, std::move(headers));
    if (!stream.ok()) {
      ADD_FAILURE() << "watch " << target << ": " << stream.status();
      return nullptr;
    }
    return *std::move(stream);
  }

  MusterdProcess musterd_;
  std::unique_ptr<wire::HttpClient> client_;
};

}  // namespace muster::testing
