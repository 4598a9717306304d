// A Greeter (examples/greeter/greeter.proto) served in the test's own process
// on a loopback address: the backend gRPC tests register with musterd and
// call, by name, through GrpcChannelPool or xds:///. It answers with its
// instance id and counts its calls; the name "missing" is answered NOT_FOUND.
//
// Example:
//   GreeterBackend b("orders-1", "127.0.0.2");
//   ASSERT_TRUE(b.Start());
//   Register("orders", "orders-1", RegisterBody(b.address()));
//   ... b.calls() ...
//   b.Stop();  // the port closes, connections drop
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include <grpcpp/grpcpp.h>

#include "greeter.grpc.pb.h"

namespace muster::testing {

class GreeterBackend {
 public:
  GreeterBackend(std::string id, std::string host) : service_(std::move(id)), host_(std::move(host)) {}
  ~GreeterBackend() { Stop(); }
  GreeterBackend(const GreeterBackend&) = delete;
  GreeterBackend& operator=(const GreeterBackend&) = delete;

  // Serves on host:port (port 0: a free one). False when it cannot listen.
  bool Start(int port = 0) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort(host_ + ":" + std::to_string(port), grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    return server_ != nullptr && port_ > 0;
  }

  // Stops serving at once: the port closes, connections are dropped.
  void Stop() {
    if (server_ == nullptr) return;
    server_->Shutdown(std::chrono::system_clock::now());
    server_->Wait();
    server_.reset();
  }

  const std::string& id() const { return service_.id; }
  std::string address() const { return host_ + ":" + std::to_string(port_); }
  int port() const { return port_; }
  int calls() const { return service_.calls.load(); }

 private:
  struct Service final : examples::Greeter::Service {
    explicit Service(std::string i) : id(std::move(i)) {}
    grpc::Status SayHello(grpc::ServerContext*, const examples::HelloRequest* request,
                          examples::HelloReply* reply) override {
      ++calls;
      if (request->name() == "missing") {
        return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such name");
      }
      reply->set_message("Hello, " + request->name());
      reply->set_instance_id(id);
      return grpc::Status::OK;
    }
    const std::string id;
    std::atomic<int> calls{0};
  };

  Service service_;
  const std::string host_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace muster::testing
