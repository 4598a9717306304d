// musterctl against a real musterd: the subcommands, --json output, and the
// exit codes (0 ok, 1 generic, 2 usage, 3 not found, 4 invalid argument,
// 5 unavailable, 6 deadline exceeded).
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "integration/musterd_fixture.h"
#include "support/run_command.h"

namespace muster::testing {
namespace {

namespace json = boost::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// A TCP socket bound to a free loopback port. Without Listen(), connecting to
// it is refused; with it, connections are accepted by the kernel and never
// answered. Closed on destruction.
class LoopbackSocket {
 public:
  LoopbackSocket() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "cannot bind a loopback socket";
      return;
    }
    port_ = ntohs(addr.sin_port);
  }
  ~LoopbackSocket() {
    if (fd_ >= 0) close(fd_);
  }
  LoopbackSocket(const LoopbackSocket&) = delete;
  LoopbackSocket& operator=(const LoopbackSocket&) = delete;

  void Listen() {
    if (listen(fd_, 16) != 0) ADD_FAILURE() << "listen failed";
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

class MusterctlTest : public MusterdTest {
 protected:
  // Runs musterctl --addr <musterd> ARGS.
  CommandResult Ctl(const std::vector<std::string>& args) {
    return CtlAt(musterd_.address(), args);
  }

  // Runs musterctl --addr ADDRESS ARGS.
  CommandResult CtlAt(const std::string& address, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {MUSTERCTL_PATH, "--addr", address};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }

  static json::value Parse(const CommandResult& r) {
    boost::system::error_code ec;
    json::value v = json::parse(r.out, ec);
    if (ec) ADD_FAILURE() << "--json output is not JSON (" << ec.message() << "): " << r.out;
    return v;
  }
};

// register sends every flag; the registry stores them.
TEST_F(MusterctlTest, RegisterStoresEveryFlag) {
  CommandResult r = Ctl({"register", "orders", "orders-1", "10.0.0.1:8080", "--version", "1.2",
                         "--weight", "5", "--ttl", "0", "--meta", "zone=eu-1", "--meta",
                         "tier=web"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr("registered"));
  ListResult list = List("orders");
  ASSERT_EQ(list.instances.size(), 1u);
  const Instance& in = list.instances[0];
  EXPECT_EQ(in.id, "orders-1");
  EXPECT_EQ(in.address, "10.0.0.1:8080");
  EXPECT_EQ(in.version, "1.2");
  EXPECT_EQ(in.weight, 5u);
  EXPECT_EQ(in.ttl_seconds, 0u);
  EXPECT_EQ(in.metadata, (std::map<std::string, std::string>{{"zone", "eu-1"}, {"tier", "web"}}));
  EXPECT_EQ(in.status, InstanceStatus::kEnabled);
}

// register --tag stores the tags in order; list --tag filters by every one
// given and prints them in the TAGS column.
TEST_F(MusterctlTest, TagsAreRegisteredAndFilterTheList) {
  ASSERT_EQ(Ctl({"register", "orders", "a", "10.0.0.1:80", "--tag", "primary", "--tag", "eu"})
                .exit_code,
            0);
  ASSERT_EQ(Ctl({"register", "orders", "b", "10.0.0.2:80", "--tag", "eu"}).exit_code, 0);
  ListResult list = List("orders");
  ASSERT_EQ(list.instances.size(), 2u);
  EXPECT_THAT(list.instances[0].tags, ElementsAre("primary", "eu"));

  CommandResult r = Ctl({"list", "orders", "--tag", "eu", "--tag", "primary"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr("TAGS"));
  EXPECT_THAT(r.out, HasSubstr("primary,eu"));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("10.0.0.2:80")));

  r = Ctl({"register", "orders", "c", "10.0.0.3:80", "--tag", "x", "--tag", "x"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("given twice"));
  EXPECT_EQ(List("orders").instances.size(), 2u);
}

// Registering an existing instance says it was updated; --disabled disables it.
TEST_F(MusterctlTest, RegisterAgainUpdates) {
  ASSERT_EQ(Ctl({"register", "orders", "a", "10.0.0.1:80"}).exit_code, 0);
  CommandResult r = Ctl({"register", "orders", "a", "10.0.0.1:80", "--disabled"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr("updated"));
  ListResult list = List("orders");
  ASSERT_EQ(list.instances.size(), 1u);
  EXPECT_EQ(list.instances[0].status, InstanceStatus::kDisabled);
}

// list prints the instances as a table.
TEST_F(MusterctlTest, ListPrintsInstances) {
  ASSERT_EQ(Ctl({"register", "orders", "orders-1", "10.0.0.1:8080"}).exit_code, 0);
  ASSERT_EQ(Ctl({"register", "orders", "orders-2", "10.0.0.2:8080"}).exit_code, 0);
  CommandResult r = Ctl({"list", "orders"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr("orders-1"));
  EXPECT_THAT(r.out, HasSubstr("10.0.0.2:8080"));
  EXPECT_LT(r.out.find("orders-1"), r.out.find("orders-2"));
}

// list --json prints the server's answer, which parses as a list.
TEST_F(MusterctlTest, ListJsonParses) {
  ASSERT_EQ(Ctl({"register", "orders", "b", "10.0.0.2:80", "--version", "2"}).exit_code, 0);
  ASSERT_EQ(Ctl({"register", "orders", "a", "10.0.0.1:80", "--version", "1"}).exit_code, 0);
  CommandResult r = Ctl({"--json", "list", "orders"});
  ASSERT_EQ(r.exit_code, 0) << r;
  json::value v = Parse(r);
  ASSERT_TRUE(v.is_object()) << r.out;
  EXPECT_EQ(U64(v.at("revision")), CurrentRevision());
  const json::array& instances = v.at("instances").as_array();
  ASSERT_EQ(instances.size(), 2u);
  EXPECT_EQ(instances[0].at("id").as_string(), "a");
  EXPECT_EQ(instances[1].at("id").as_string(), "b");

  // Filters go through: --version, and --json after the subcommand.
  CommandResult filtered = Ctl({"list", "orders", "--version", "2", "--json"});
  ASSERT_EQ(filtered.exit_code, 0) << filtered;
  json::value f = Parse(filtered);
  ASSERT_TRUE(f.is_object()) << filtered.out;
  ASSERT_EQ(f.at("instances").as_array().size(), 1u);
  EXPECT_EQ(f.at("instances").as_array()[0].at("id").as_string(), "b");
}

// services lists names with counts, as a table and as JSON.
TEST_F(MusterctlTest, ServicesPrintsCounts) {
  ASSERT_EQ(Ctl({"register", "orders", "o1", "10.0.0.1:80"}).exit_code, 0);
  ASSERT_EQ(Ctl({"register", "orders", "o2", "10.0.0.2:80", "--disabled"}).exit_code, 0);
  ASSERT_EQ(Ctl({"register", "billing", "b1", "10.0.0.3:80"}).exit_code, 0);

  CommandResult text = Ctl({"services"});
  ASSERT_EQ(text.exit_code, 0) << text;
  EXPECT_THAT(text.out, HasSubstr("orders"));
  EXPECT_THAT(text.out, HasSubstr("billing"));

  CommandResult r = Ctl({"--json", "services"});
  ASSERT_EQ(r.exit_code, 0) << r;
  json::value v = Parse(r);
  ASSERT_TRUE(v.is_object()) << r.out;
  const json::array& services = v.at("services").as_array();
  ASSERT_EQ(services.size(), 2u);
  EXPECT_EQ(services[0].at("name").as_string(), "billing");
  EXPECT_EQ(services[1].at("name").as_string(), "orders");
  EXPECT_EQ(U64(services[1].at("instances")), 2u);
  EXPECT_EQ(U64(services[1].at("healthy")), 1u);
}

// deregister removes the instance.
TEST_F(MusterctlTest, DeregisterRemovesInstance) {
  ASSERT_EQ(Ctl({"register", "orders", "a", "10.0.0.1:80"}).exit_code, 0);
  CommandResult r = Ctl({"deregister", "orders", "a"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr("deregistered"));
  EXPECT_THAT(List("orders").ids(), IsEmpty());
}

// heartbeat renews a known instance and is "not found" for an unknown one.
TEST_F(MusterctlTest, HeartbeatRenewsOrIsNotFound) {
  ASSERT_EQ(Ctl({"register", "orders", "a", "10.0.0.1:80", "--ttl", "30"}).exit_code, 0);
  CommandResult ok = Ctl({"heartbeat", "orders", "a"});
  EXPECT_EQ(ok.exit_code, 0) << ok;
  CommandResult missing = Ctl({"heartbeat", "orders", "nobody"});
  EXPECT_EQ(missing.exit_code, 3) << missing;
}

// --ttl-check registers a reported check, critical until `report` passes it.
TEST_F(MusterctlTest, TtlCheckIsPassedByReport) {
  CommandResult r = Ctl({"register", "orders", "a", "10.0.0.1:80", "--ttl-check", "30s"});
  ASSERT_EQ(r.exit_code, 0) << r;
  ListResult listed = List("orders");
  ASSERT_EQ(listed.instances.size(), 1u);
  EXPECT_EQ(listed.instances[0].health, Health::kCritical);
  EXPECT_EQ(listed.instances[0].ttl_seconds, 0u);

  r = Ctl({"report", "orders", "a", "ttl", "passing", "--output", "queue depth 3"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr("instance passing"));
  listed = List("orders");
  EXPECT_EQ(listed.instances[0].health, Health::kPassing);
  EXPECT_EQ(listed.instances[0].checks[0].output, "queue depth 3");

  EXPECT_EQ(Ctl({"report", "orders", "a", "nope", "passing"}).exit_code, 3);
  EXPECT_EQ(Ctl({"report", "orders", "a", "ttl", "fine"}).exit_code, 2);  // usage
  ASSERT_EQ(Ctl({"register", "orders", "b", "10.0.0.2:80", "--check", R"({"type":"ttl"})"}).exit_code, 0);
  r = Ctl({"report", "orders", "b", "ttl", "passing"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_THAT(r.err, HasSubstr("heartbeats"));
}

// Deregistering an unknown instance exits 3 (not found) with a message.
TEST_F(MusterctlTest, DeregisterUnknownExits3) {
  CommandResult r = Ctl({"deregister", "orders", "nobody"});
  EXPECT_EQ(r.exit_code, 3) << r;
  EXPECT_THAT(r.err, HasSubstr("musterctl:"));
}

// A weight the registry refuses exits 4 (invalid argument) and stores nothing.
TEST_F(MusterctlTest, BadWeightExits4) {
  for (const char* weight : {"0", "10001"}) {
    CommandResult r = Ctl({"register", "orders", "a", "10.0.0.1:80", "--weight", weight});
    EXPECT_EQ(r.exit_code, 4) << r;
    EXPECT_THAT(r.err, HasSubstr("weight"));
  }
  EXPECT_THAT(List("orders").ids(), IsEmpty());
}

// An address the registry refuses exits 4 too.
TEST_F(MusterctlTest, BadInstanceAddressExits4) {
  CommandResult r = Ctl({"register", "orders", "a", "10.0.0.1:0"});
  EXPECT_EQ(r.exit_code, 4) << r;
  EXPECT_THAT(List("orders").ids(), IsEmpty());
}

// --namespace scopes every subcommand.
TEST_F(MusterctlTest, NamespaceFlagScopesCommands) {
  ASSERT_EQ(Ctl({"--namespace", "team-a", "register", "orders", "a", "10.0.0.1:80"}).exit_code,
            0);
  EXPECT_THAT(List("orders", "namespace=team-a").ids(), ElementsAre("a"));
  EXPECT_THAT(List("orders").ids(), IsEmpty());
  EXPECT_EQ(Ctl({"deregister", "orders", "a"}).exit_code, 3);
  EXPECT_EQ(Ctl({"--namespace", "team-a", "deregister", "orders", "a"}).exit_code, 0);
}

// Usage errors exit 2: no subcommand, an unknown flag, a missing argument.
TEST_F(MusterctlTest, UsageErrorsExit2) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {}, {"list"}, {"register", "orders", "a"}, {"list", "orders", "--bogus"},
           {"frobnicate"}, {"list", "orders", "--timeout", "soon"}}) {
    CommandResult r = Ctl(args);
    EXPECT_EQ(r.exit_code, 2) << r;
  }
  CommandResult bad_addr = CtlAt("not-an-address", {"services"});
  EXPECT_EQ(bad_addr.exit_code, 2) << bad_addr;
}

class MusterctlUnreachableTest : public ::testing::Test {};

// A registry that refuses connections exits 5 (unavailable).
TEST_F(MusterctlUnreachableTest, UnreachableRegistryExits5) {
  LoopbackSocket closed;  // bound, not listening: connections are refused
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"services"}, {"list", "orders"}, {"register", "orders", "a", "10.0.0.1:80"},
           {"deregister", "orders", "a"}}) {
    std::vector<std::string> argv = {MUSTERCTL_PATH, "--addr", closed.address()};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandResult r = RunCommand(argv);
    EXPECT_EQ(r.exit_code, 5) << r;
  }
}

// A registry that accepts but never answers exits 6 after --timeout.
TEST_F(MusterctlUnreachableTest, SilentRegistryExits6) {
  LoopbackSocket silent;
  silent.Listen();
  CommandResult r = RunCommand(
      {MUSTERCTL_PATH, "--addr", silent.address(), "--timeout", "300ms", "services"});
  EXPECT_EQ(r.exit_code, 6) << r;
}

}  // namespace
}  // namespace muster::testing
