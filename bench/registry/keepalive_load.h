// Lease renewals on etcd through LeaseKeepAlive bidi streams, as etcd's own
// client sends them: `streams` streams spread over `channels`, each with up
// to `window` renewals written and not yet answered (a stream answers in
// order, so each answer is matched with the oldest renewal sent). Renews the
// leases in turn, for `seconds`; all on the calling thread.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "registry/load_result.h"

namespace muster::bench {

LoadResult RunKeepAliveLoad(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                            const std::vector<int64_t>& leases, int streams, int window,
                            double seconds);

}  // namespace muster::bench
