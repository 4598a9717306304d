// Watch fan-out on etcd: `watchers` Watch streams (one watch each, on the
// prefix /bench/fan/) spread over `channels` (HTTP/2 connections), read on
// one completion-queue thread; another thread then makes `changes` puts under
// the prefix, one after another, each once every stream has the previous one
// (or 10 s passed).
#pragma once

#include <memory>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "registry/fanout.h"

namespace muster::bench {

FanoutResult RunEtcdFanout(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                           const std::shared_ptr<grpc::Channel>& writer, int watchers, int changes);

}  // namespace muster::bench
