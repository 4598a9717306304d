// The GeeRPC registry protocol over plain HTTP (headers only), its mapping into
// the native API, and its configurable path, header prefix, service and timeout.
#include <chrono>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "integration/musterd_fixture.h"

namespace muster::testing {
namespace {

using ::testing::AnyOf;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

class GeerpcTest : public MusterdTest {
 protected:
  // POST PATH with header NAME: ADDRESS.
  wire::HttpResponse Announce(const std::string& address,
                                const std::string& header = "X-Geerpc-Server",
                                const std::string& path = "/_geerpc_/registry") {
    wire::HttpRequest request{"POST", path, "", {}};
    if (!address.empty()) request.headers.emplace_back(header, address);
    return Must(client().Do(request));
  }

  // GET PATH and the named header of the answer ("" when absent).
  std::string Servers(const std::string& header = "X-Geerpc-Servers",
                      const std::string& path = "/_geerpc_/registry") {
    wire::HttpResponse r = Must(client().Get(path));
    EXPECT_EQ(r.status, 200) << r.body;
    return r.Header(header).value_or("");
  }
};

// POST registers addresses; GET answers them sorted and comma-joined.
TEST_F(GeerpcTest, PostRegistersAndGetListsSortedAddresses) {
  for (const char* address : {"tcp@127.0.0.1:9999", "tcp@127.0.0.1:9001", "http@10.0.0.1:80"}) {
    wire::HttpResponse r = Announce(address);
    EXPECT_EQ(r.status, 200) << address << ": " << r.body;
    EXPECT_TRUE(r.body.empty()) << r.body;
  }
  EXPECT_EQ(Servers(), "http@10.0.0.1:80,tcp@127.0.0.1:9001,tcp@127.0.0.1:9999");
}

// Posting the same address again renews it; it is listed once.
TEST_F(GeerpcTest, RepeatedPostIsListedOnce) {
  ASSERT_EQ(Announce("tcp@127.0.0.1:9999").status, 200);
  ASSERT_EQ(Announce("tcp@127.0.0.1:9999").status, 200);
  EXPECT_EQ(Servers(), "tcp@127.0.0.1:9999");
  EXPECT_EQ(List("geerpc").instances.size(), 1u);
}

// A POST without the server header is 400.
TEST_F(GeerpcTest, PostWithoutHeaderIs400) {
  wire::HttpResponse r = Announce("");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_THAT(List("geerpc").ids(), IsEmpty());
}

// A posted server is an instance of service "geerpc" in the native API.
TEST_F(GeerpcTest, PostedServerAppearsInNativeApi) {
  ASSERT_EQ(Announce("tcp@127.0.0.1:9999").status, 200);
  ListResult list = List("geerpc");
  ASSERT_EQ(list.instances.size(), 1u);
  const Instance& in = list.instances[0];
  EXPECT_EQ(in.ns, "default");
  EXPECT_EQ(in.service, "geerpc");
  EXPECT_EQ(in.address, "127.0.0.1:9999");
  EXPECT_EQ(in.metadata.at("geerpc_addr"), "tcp@127.0.0.1:9999");
  EXPECT_EQ(in.ttl_seconds, 300u);  // --geerpc-timeout default 5m
  // '@' and ':' are outside [A-Za-z0-9.-] and written as _XX hex.
  EXPECT_THAT(in.id, AnyOf("tcp_40127.0.0.1_3A9999", "tcp_40127.0.0.1_3a9999"));
}

// An address without a protocol maps the same way.
TEST_F(GeerpcTest, AddressWithoutProtocolMapsToInstance) {
  ASSERT_EQ(Announce("127.0.0.1:8000").status, 200);
  ListResult list = List("geerpc");
  ASSERT_EQ(list.instances.size(), 1u);
  EXPECT_EQ(list.instances[0].address, "127.0.0.1:8000");
  EXPECT_EQ(list.instances[0].metadata.at("geerpc_addr"), "127.0.0.1:8000");
  EXPECT_THAT(list.instances[0].id, AnyOf("127.0.0.1_3A8000", "127.0.0.1_3a8000"));
  EXPECT_EQ(Servers(), "127.0.0.1:8000");
}

// An instance registered through the native API in GeeRPC's service is listed
// by its own address unless its geerpc_addr is one GeeRPC could have
// announced: a comma in it split the list into servers that do not exist, a
// CR LF ended the header. Found by fuzz/geerpc_header_fuzz.
TEST_F(GeerpcTest, GetListsOnlyAddressesGeeRpcAnnounces) {
  auto with_addr = [](const char* addr) {
    return RegisterBody("127.0.0.1:9001",
                        boost::json::object{{"metadata", boost::json::object{{"geerpc_addr", addr}}}});
  };
  ASSERT_EQ(Register("geerpc", "comma", with_addr("tcp@10.0.0.1:1,tcp@10.0.0.2:2")).status, 201);
  ASSERT_EQ(Register("geerpc", "crlf", with_addr("tcp@10.0.0.3:3\r\nSet-Cookie: a=b")).status, 201);
  ASSERT_EQ(Register("geerpc", "empty", with_addr("")).status, 201);
  ASSERT_EQ(Announce("tcp@127.0.0.1:9003").status, 200);
  wire::HttpResponse r = Must(client().Get("/_geerpc_/registry"));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Header("X-Geerpc-Servers").value_or(""),
            "127.0.0.1:9001,127.0.0.1:9001,127.0.0.1:9001,tcp@127.0.0.1:9003");
  EXPECT_FALSE(r.Header("Set-Cookie").has_value());
}

// Deregistering the instance in the native API removes it from GeeRPC's GET.
TEST_F(GeerpcTest, NativeDeregisterRemovesServer) {
  ASSERT_EQ(Announce("tcp@127.0.0.1:9999").status, 200);
  ASSERT_EQ(Announce("tcp@127.0.0.1:9001").status, 200);
  ListResult list = List("geerpc");
  ASSERT_EQ(list.instances.size(), 2u);
  const Instance* gone = nullptr;
  for (const Instance& in : list.instances) {
    if (in.address == "127.0.0.1:9999") gone = &in;
  }
  ASSERT_NE(gone, nullptr);
  ASSERT_EQ(Deregister("geerpc", gone->id).status, 200);
  EXPECT_EQ(Servers(), "tcp@127.0.0.1:9001");
}

// A watch on service geerpc sees a POST as a registration.
TEST_F(GeerpcTest, PostIsSeenByWatchers) {
  auto stream = Watch(wire::WatchTarget("", {"geerpc"}));
  ASSERT_NE(stream, nullptr);
  ASSERT_EQ(Announce("tcp@127.0.0.1:9999").status, 200);
  auto e = NextEvent(*stream, std::chrono::seconds(10));
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->type, "registered");
  EXPECT_EQ(e->instance.address, "127.0.0.1:9999");
}

// A custom path, header prefix and service name.
class GeerpcCustomTest : public GeerpcTest {
 protected:
  std::vector<std::string> MusterdArgs() const override {
    return {"--geerpc-header-prefix", "X-Myrpc-", "--geerpc-path", "/_myrpc_/registry",
            "--geerpc-service", "myrpc"};
  }
};

// --geerpc-header-prefix X-Myrpc- renames both headers.
TEST_F(GeerpcCustomTest, CustomHeaderPrefixIsUsed) {
  const std::string path = "/_myrpc_/registry";
  wire::HttpResponse ok = Announce("tcp@127.0.0.1:7000", "X-Myrpc-Server", path);
  EXPECT_EQ(ok.status, 200) << ok.body;
  wire::HttpResponse old = Announce("tcp@127.0.0.1:7001", "X-Geerpc-Server", path);
  EXPECT_EQ(old.status, 400) << "the default header must not count: " << old.body;
  EXPECT_EQ(Servers("X-Myrpc-Servers", path), "tcp@127.0.0.1:7000");
}

// The instances appear under the configured service, and the default path is gone.
TEST_F(GeerpcCustomTest, CustomServiceAndPathAreUsed) {
  ASSERT_EQ(Announce("tcp@127.0.0.1:7000", "X-Myrpc-Server", "/_myrpc_/registry").status, 200);
  ListResult list = List("myrpc");
  ASSERT_EQ(list.instances.size(), 1u);
  EXPECT_EQ(list.instances[0].address, "127.0.0.1:7000");
  EXPECT_THAT(List("geerpc").ids(), IsEmpty());
  EXPECT_EQ(Must(client().Get("/_geerpc_/registry")).status, 404);
}

// A short --geerpc-timeout: a server that stops posting drops out.
class GeerpcTimeoutTest : public GeerpcTest {
 protected:
  std::vector<std::string> MusterdArgs() const override { return {"--geerpc-timeout", "1s"}; }
};

// Without renewal the address leaves GET's answer after the timeout.
TEST_F(GeerpcTimeoutTest, ServerThatStopsPostingDropsOut) {
  ASSERT_EQ(Announce("tcp@127.0.0.1:9999").status, 200);
  EXPECT_EQ(Servers(), "tcp@127.0.0.1:9999");
  ListResult list = List("geerpc");
  ASSERT_EQ(list.instances.size(), 1u);
  EXPECT_EQ(list.instances[0].ttl_seconds, 1u);
  EXPECT_TRUE(WaitFor([&] { return Servers().empty(); }, std::chrono::seconds(4),
                      std::chrono::milliseconds(50)))
      << "still listed: " << Servers();
}

}  // namespace
}  // namespace muster::testing
