// The GeeRPC protocol's decisions (server/geerpc_protocol.h): the instance a
// POST announces, and the server list a GET answers.
#include "server/geerpc_protocol.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/status_matchers.h"

namespace muster {
namespace {

using ::muster::testing::IsOk;
using ::muster::testing::StatusIs;
using namespace std::chrono_literals;

std::shared_ptr<const Instance> Native(const std::string& address,
                                       std::optional<std::string> geerpc_addr) {
  auto in = std::make_shared<Instance>();
  in->service = "geerpc";
  in->id = "native";
  in->address = address;
  if (geerpc_addr) in->metadata.emplace(kGeeRpcAddrKey, *geerpc_addr);
  return in;
}

// An announced server is an instance of the service with the announced
// value kept, an id spelling it, and the value without protocol as address.
TEST(GeeRpcProtocol, AnnouncedServerBecomesAnInstance) {
  auto in = GeeRpcInstance("tcp@127.0.0.1:9999", "geerpc", 5min, Limits{});
  ASSERT_THAT(in.status(), IsOk());
  EXPECT_EQ(in->ns, "default");
  EXPECT_EQ(in->service, "geerpc");
  EXPECT_EQ(in->id, "tcp_40127.0.0.1_3A9999");
  EXPECT_EQ(in->address, "127.0.0.1:9999");
  EXPECT_EQ(in->metadata.at("geerpc_addr"), "tcp@127.0.0.1:9999");
  EXPECT_EQ(in->ttl_seconds, 300u);
  EXPECT_THAT(GeeRpcInstance("TCP@127.0.0.1:1", "geerpc", 5min, Limits{}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("protocol")));
}

// GET answers an instance's geerpc_addr only when GeeRPC could have
// announced it; an instance registered through the native API may hold any
// string there (a comma split the list, a CR LF ended the header). Found by
// fuzz/geerpc_header_fuzz.
TEST(GeeRpcProtocol, ListAnswersOnlyAddressesGeeRpcAnnounces) {
  const std::vector<std::shared_ptr<const Instance>> instances = {
      Native("127.0.0.1:9001", "tcp@10.0.0.1:1,tcp@10.0.0.2:2"),
      Native("127.0.0.1:9002", "tcp@10.0.0.3:3\r\nSet-Cookie: a=b"),
      Native("127.0.0.1:9003", ""),
      Native("127.0.0.1:9004", std::nullopt),
      Native("127.0.0.1:9005", "http@127.0.0.1:9005"),
  };
  EXPECT_EQ(GeeRpcServerList(instances, Limits{}),
            "127.0.0.1:9001,127.0.0.1:9002,127.0.0.1:9003,127.0.0.1:9004,http@127.0.0.1:9005");
}

}  // namespace
}  // namespace muster
