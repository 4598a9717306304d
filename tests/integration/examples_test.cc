// The examples end to end: three echo_servers register with a real musterd,
// echo_client spreads requests over them, one server is SIGKILLed mid-run and
// every request still succeeds (retried on another instance); a SIGTERMed
// server deregisters itself. The same for the gRPC greeter: greeter_servers
// and greeter_pool_client (GrpcChannelPool); and greeter_xds_client, plain
// gRPC dialing xds:///greeter with the bootstrap that the real
// `musterctl xds-bootstrap` prints for the fixture's musterd.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "integration/musterd_fixture.h"
#include "support/run_command.h"

namespace muster::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// The environment of this process with `set` ("NAME=VALUE" entries) in
// place of the variables of those names, and without those named in `unset`.
std::vector<std::string> EnvironmentWith(const std::vector<std::string>& set,
                                         const std::vector<std::string>& unset = {}) {
  auto named = [](const std::string& entry, const std::string& name) {
    return entry.size() > name.size() && entry.compare(0, name.size(), name) == 0 &&
           entry[name.size()] == '=';
  };
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    bool drop = false;
    for (const std::string& name : unset) drop |= named(entry, name);
    for (const std::string& s : set) drop |= named(entry, s.substr(0, s.find('=')));
    if (!drop) env.push_back(entry);
  }
  env.insert(env.end(), set.begin(), set.end());
  return env;
}

// A child process whose stdout and stderr are collected by a reader thread,
// so a test can wait for a line while the child runs. Killed (SIGKILL) when
// destroyed; dies with the test thread that started it (PR_SET_PDEATHSIG).
// Its environment is this process's, or `env` when given.
class Child {
 public:
  explicit Child(std::vector<std::string> argv, std::optional<std::vector<std::string>> env = {})
      : argv_(std::move(argv)), env_(std::move(env)) {}
  ~Child() {
    Signal(SIGKILL);
    Wait(seconds(10));
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  bool Start() {
    IgnoreSigpipe();
    std::vector<char*> argv;
    for (std::string& a : argv_) argv.push_back(a.data());
    argv.push_back(nullptr);
    // Built before fork: the child may only exec.
    std::vector<char*> envp;
    if (env_) {
      for (std::string& e : *env_) envp.push_back(e.data());
    } else {
      for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
    }
    envp.push_back(nullptr);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return false;
    const pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      signal(SIGPIPE, SIG_DFL);
      int null_fd = open("/dev/null", O_RDONLY);
      if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(fds[1], STDOUT_FILENO) < 0 ||
          dup2(fds[1], STDERR_FILENO) < 0) {
        _exit(127);
      }
      execve(argv[0], argv.data(), envp.data());
      _exit(127);
    }
    close(fds[1]);
    if (pid < 0) {
      close(fds[0]);
      return false;
    }
    pid_ = pid;
    reader_ = std::thread([this, fd = fds[0]] {
      char buf[4096];
      while (true) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        std::lock_guard lock(mu_);
        output_.append(buf, static_cast<size_t>(n));
        changed_.notify_all();
      }
      close(fd);
    });
    return true;
  }

  // Waits until the output matches `pattern`; false when `timeout` passed first.
  bool WaitForOutput(const std::regex& pattern, milliseconds timeout) {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, timeout, [&] { return std::regex_search(output_, pattern); });
  }

  std::string Output() const {
    std::lock_guard lock(mu_);
    return output_;
  }

  void Signal(int sig) {
    if (pid_ > 0) kill(pid_, sig);
  }

  // The exit code (128 + signal when a signal ended it), or -1 when it did
  // not exit within `timeout`.
  int Wait(milliseconds timeout) {
    if (pid_ <= 0) return exit_code_;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (true) {
      pid_t done = waitpid(pid_, &status, WNOHANG);
      if (done == pid_) break;
      if (done < 0 && errno != EINTR) return -1;
      if (std::chrono::steady_clock::now() >= deadline) return -1;
      std::this_thread::sleep_for(milliseconds(10));
    }
    pid_ = -1;
    if (reader_.joinable()) reader_.join();
    exit_code_ = ExitCodeOf(status);
    return exit_code_;
  }

 private:
  std::vector<std::string> argv_;
  std::optional<std::vector<std::string>> env_;
  pid_t pid_ = -1;
  int exit_code_ = -1;
  std::thread reader_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::string output_;  // guarded by mu_
};

class ExamplesTest : public MusterdTest {
 protected:
  // Starts an echo_server and waits until it serves (it registers first).
  std::unique_ptr<Child> StartServer(const std::string& id) {
    auto child = std::make_unique<Child>(std::vector<std::string>{
        ECHO_SERVER_PATH, "--registry", musterd_.address(), "--listen", "127.0.0.1:0", "--id", id,
        "--ttl", "2"});
    if (!child->Start()) {
      ADD_FAILURE() << "cannot start echo_server";
      return nullptr;
    }
    if (!child->WaitForOutput(std::regex("listening on 127\\.0\\.0\\.1:[0-9]+\n"), seconds(15))) {
      ADD_FAILURE() << id << " did not start:\n" << child->Output();
    }
    return child;
  }

  // Starts a greeter_server on `host` and waits until it serves (it
  // registers first).
  std::unique_ptr<Child> StartGreeter(const std::string& id, const std::string& host,
                                      const std::vector<std::string>& more = {}) {
    std::vector<std::string> argv{GREETER_SERVER_PATH, "--registry", "http://" + musterd_.address(),
                                  "--listen", host + ":0", "--id", id, "--ttl", "2"};
    argv.insert(argv.end(), more.begin(), more.end());
    auto child = std::make_unique<Child>(std::move(argv));
    if (!child->Start()) {
      ADD_FAILURE() << "cannot start greeter_server";
      return nullptr;
    }
    if (!child->WaitForOutput(std::regex("listening on [0-9.]+:[0-9]+\n"), seconds(15))) {
      ADD_FAILURE() << id << " did not start:\n" << child->Output();
    }
    return child;
  }

  // "  id: N" lines of the client's summary.
  static std::map<std::string, int> Counts(const std::string& output) {
    std::map<std::string, int> counts;
    std::regex line("\n  ([A-Za-z0-9._-]+): ([0-9]+)");
    for (std::sregex_iterator it(output.begin(), output.end(), line), end; it != end; ++it) {
      counts[(*it)[1]] = std::stoi((*it)[2]);
    }
    return counts;
  }
};

// Requests spread over three servers; one is SIGKILLed mid-run and every
// request still succeeds.
TEST_F(ExamplesTest, ClientSurvivesServerKilledMidRun) {
  auto s1 = StartServer("echo-1");
  auto s2 = StartServer("echo-2");
  auto s3 = StartServer("echo-3");
  ASSERT_FALSE(HasFailure());
  ASSERT_EQ(List("echo").instances.size(), 3u);

  Child client({ECHO_CLIENT_PATH, "--registry", musterd_.address(), "--balancer", "round_robin",
                "--count", "60", "--interval", "30ms", "--timeout", "2s", "--verbose"});
  ASSERT_TRUE(client.Start());
  // Once every server has answered a few requests, kill one.
  ASSERT_TRUE(client.WaitForOutput(std::regex("request 9 ok"), seconds(30))) << client.Output();
  s2->Signal(SIGKILL);
  EXPECT_EQ(s2->Wait(seconds(10)), 128 + SIGKILL);

  const int code = client.Wait(seconds(60));
  const std::string out = client.Output();
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, ::testing::HasSubstr("60 ok, 0 failed")) << out;
  auto counts = Counts(out);
  EXPECT_EQ(counts.size(), 3u) << out;
  int total = 0;
  for (const char* id : {"echo-1", "echo-2", "echo-3"}) {
    EXPECT_GT(counts[id], 0) << id << "\n" << out;
    total += counts[id];
  }
  EXPECT_EQ(total, 60) << out;
  // echo-2 failed at least once before the client gave up on it.
  EXPECT_THAT(out, ::testing::HasSubstr("attempt on echo-2 failed")) << out;
}

// SIGTERM makes a server deregister itself before it exits.
TEST_F(ExamplesTest, ServerDeregistersOnSigterm) {
  auto s1 = StartServer("echo-1");
  ASSERT_FALSE(HasFailure());
  ASSERT_NE(List("echo").Find("echo-1"), nullptr);
  s1->Signal(SIGTERM);
  EXPECT_EQ(s1->Wait(seconds(15)), 0) << s1->Output();
  EXPECT_EQ(List("echo").Find("echo-1"), nullptr);
}

// The client exits non-zero when requests fail: no instance at all.
TEST_F(ExamplesTest, ClientFailsWithoutInstances) {
  CommandResult r = RunCommand({ECHO_CLIENT_PATH, "--registry", musterd_.address(), "--count", "2",
                                "--interval", "0"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_THAT(r.out, ::testing::HasSubstr("0 ok, 2 failed")) << r;
}

// gRPC by service name: calls spread over three greeter_servers on
// different loopback addresses; one is SIGKILLed mid-run and every call
// still succeeds.
TEST_F(ExamplesTest, GreeterPoolClientSurvivesServerKilledMidRun) {
  auto g1 = StartGreeter("greeter-1", "127.0.0.1");
  auto g2 = StartGreeter("greeter-2", "127.0.0.2");
  auto g3 = StartGreeter("greeter-3", "127.0.0.3");
  ASSERT_FALSE(HasFailure());
  ASSERT_EQ(List("greeter").instances.size(), 3u);

  Child client({GREETER_POOL_CLIENT_PATH, "--registry", "http://" + musterd_.address(),
                "--balancer", "round_robin", "--count", "60", "--interval", "30ms", "--timeout",
                "2s", "--verbose"});
  ASSERT_TRUE(client.Start());
  ASSERT_TRUE(client.WaitForOutput(std::regex("call 9 ok"), seconds(30))) << client.Output();
  g2->Signal(SIGKILL);
  EXPECT_EQ(g2->Wait(seconds(10)), 128 + SIGKILL);

  const int code = client.Wait(seconds(60));
  const std::string out = client.Output();
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, ::testing::HasSubstr("60 ok, 0 failed")) << out;
  auto counts = Counts(out);
  EXPECT_EQ(counts.size(), 3u) << out;
  int total = 0;
  for (const char* id : {"greeter-1", "greeter-2", "greeter-3"}) {
    EXPECT_GT(counts[id], 0) << id << "\n" << out;
    total += counts[id];
  }
  EXPECT_EQ(total, 60) << out;
  EXPECT_THAT(out, ::testing::HasSubstr("attempt on greeter-2 failed")) << out;
}

// With ring_hash and a request key every call goes to one instance.
TEST_F(ExamplesTest, GreeterPoolClientKeepsAKeyOnOneInstance) {
  auto g1 = StartGreeter("greeter-1", "127.0.0.1");
  auto g2 = StartGreeter("greeter-2", "127.0.0.2");
  ASSERT_FALSE(HasFailure());
  CommandResult r = RunCommand({GREETER_POOL_CLIENT_PATH, "--registry", musterd_.address(),
                                "--balancer", "ring_hash", "--key", "user-42", "--count", "20",
                                "--interval", "0"});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_THAT(r.out, ::testing::HasSubstr("20 ok, 0 failed, 20 attempts, 2 channels")) << r;
  auto counts = Counts(r.out);
  ASSERT_EQ(counts.size(), 1u) << r;
  EXPECT_EQ(counts.begin()->second, 20) << r;
}

// SIGTERM makes a greeter_server deregister itself before it exits.
TEST_F(ExamplesTest, GreeterServerDeregistersOnSigterm) {
  auto g1 = StartGreeter("greeter-1", "127.0.0.1");
  ASSERT_FALSE(HasFailure());
  ASSERT_NE(List("greeter").Find("greeter-1"), nullptr);
  g1->Signal(SIGTERM);
  EXPECT_EQ(g1->Wait(seconds(15)), 0) << g1->Output();
  EXPECT_THAT(g1->Output(), ::testing::HasSubstr("greeter_server greeter-1 stopped"));
  EXPECT_EQ(List("greeter").Find("greeter-1"), nullptr);
}

// The greeter client exits non-zero when calls fail: no instance at all.
TEST_F(ExamplesTest, GreeterPoolClientFailsWithoutInstances) {
  CommandResult r = RunCommand({GREETER_POOL_CLIENT_PATH, "--registry", musterd_.address(),
                                "--count", "2", "--interval", "0"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_THAT(r.out, ::testing::HasSubstr("0 ok, 2 failed")) << r;
}

// The xDS walk-through of examples/README.md: the bootstrap from
// `musterctl xds-bootstrap`, then plain gRPC.
class XdsExamplesTest : public ExamplesTest {
 protected:
  void TearDown() override {
    if (!bootstrap_dir_.empty()) std::filesystem::remove_all(bootstrap_dir_);
    ExamplesTest::TearDown();
  }

  // What `musterctl --addr MUSTERD xds-bootstrap` prints for the fixture's
  // musterd (it finds the xDS address in /healthz).
  std::string Bootstrap() {
    CommandResult r = RunCommand({MUSTERCTL_PATH, "--addr", musterd_.address(), "xds-bootstrap"});
    EXPECT_EQ(r.exit_code, 0) << r;
    EXPECT_THAT(r.out, ::testing::HasSubstr("\"server_uri\":\"" + musterd_.xds_address() + "\""))
        << r;
    return r.out;
  }

  // `musterctl xds-bootstrap > DIR/xds.json`: the file's path.
  std::string BootstrapFile() {
    auto dir = MakeTempDir("muster-xds-bootstrap");
    if (!dir.ok()) {
      ADD_FAILURE() << dir.status();
      return "";
    }
    bootstrap_dir_ = *dir;
    const std::string path = bootstrap_dir_ + "/xds.json";
    std::ofstream(path) << Bootstrap();
    return path;
  }

  // Runs greeter_xds_client with `args` in the environment `env` (this
  // process's with the given variables set), to its end.
  static std::pair<int, std::string> RunXdsClient(const std::vector<std::string>& args,
                                                  const std::vector<std::string>& env) {
    std::vector<std::string> argv{GREETER_XDS_CLIENT_PATH};
    argv.insert(argv.end(), args.begin(), args.end());
    Child client(std::move(argv), EnvironmentWith(env, {"GRPC_XDS_BOOTSTRAP",
                                                        "GRPC_XDS_BOOTSTRAP_CONFIG"}));
    if (!client.Start()) return {-1, "cannot start greeter_xds_client"};
    const int code = client.Wait(seconds(60));
    return {code, client.Output()};
  }

  int64_t XdsNacks() {
    wire::HttpResponse r = Must(client().Get("/healthz"));
    return JsonOf(r).as_object().at("xds").as_object().at("nacks").as_int64();
  }

  std::string bootstrap_dir_;
};

// As the README has it: two greeters, weights 100 and 300; the bootstrap in a
// file named by GRPC_XDS_BOOTSTRAP; a hundred calls reach both, the heavy one
// more often (gRPC picks by weight at random: fewer than half for it is
// about five standard deviations out).
TEST_F(XdsExamplesTest, GreeterXdsClientReachesEveryServerByWeight) {
  auto g1 = StartGreeter("greeter-1", "127.0.0.1");
  auto g2 = StartGreeter("greeter-2", "127.0.0.2", {"--weight", "300"});
  ASSERT_FALSE(HasFailure());
  const std::string file = BootstrapFile();
  ASSERT_FALSE(HasFailure());

  auto [code, out] = RunXdsClient({"--count", "100", "--interval", "10ms"},
                                  {"GRPC_XDS_BOOTSTRAP=" + file});
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, ::testing::HasSubstr("100 calls to xds:///greeter: 100 ok, 0 failed")) << out;
  auto counts = Counts(out);
  EXPECT_EQ(counts.size(), 2u) << out;
  EXPECT_GT(counts["greeter-1"], 0) << out;
  EXPECT_GT(counts["greeter-2"], counts["greeter-1"]) << out;
  EXPECT_EQ(counts["greeter-1"] + counts["greeter-2"], 100) << out;
  EXPECT_EQ(XdsNacks(), 0);
}

// The bootstrap JSON itself in GRPC_XDS_BOOTSTRAP_CONFIG, and a target that
// names the namespace.
TEST_F(XdsExamplesTest, GreeterXdsClientTakesTheBootstrapFromTheEnvironment) {
  auto g1 = StartGreeter("greeter-1", "127.0.0.1");
  auto g2 = StartGreeter("greeter-2", "127.0.0.2");
  ASSERT_FALSE(HasFailure());
  const std::string bootstrap = Bootstrap();
  ASSERT_FALSE(HasFailure());

  auto [code, out] =
      RunXdsClient({"--target", "xds:///default/greeter", "--count", "40", "--interval", "0",
                    "--verbose"},
                   {"GRPC_XDS_BOOTSTRAP_CONFIG=" + bootstrap});
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, ::testing::HasSubstr("40 calls to xds:///default/greeter: 40 ok, 0 failed"))
      << out;
  EXPECT_THAT(out, ::testing::HasSubstr("call 1 ok greeter-")) << out;
  auto counts = Counts(out);
  EXPECT_EQ(counts.size(), 2u) << out;
  EXPECT_GT(counts["greeter-1"], 0) << out;
  EXPECT_GT(counts["greeter-2"], 0) << out;
}

// Without a bootstrap the client says how to make one and exits 2.
TEST_F(XdsExamplesTest, GreeterXdsClientWithoutBootstrapSaysHowToMakeOne) {
  auto [code, out] = RunXdsClient({"--count", "1"}, {});
  EXPECT_EQ(code, 2) << out;
  EXPECT_THAT(out, ::testing::HasSubstr("neither GRPC_XDS_BOOTSTRAP")) << out;
  EXPECT_THAT(out, ::testing::HasSubstr("musterctl xds-bootstrap > /tmp/xds.json")) << out;
}

// A service with no instance: every call fails (UNAVAILABLE, or the deadline)
// and the client exits 1.
TEST_F(XdsExamplesTest, GreeterXdsClientFailsWithoutInstances) {
  const std::string file = BootstrapFile();
  ASSERT_FALSE(HasFailure());
  auto [code, out] = RunXdsClient({"--count", "2", "--interval", "0", "--timeout", "1s"},
                                  {"GRPC_XDS_BOOTSTRAP=" + file});
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, ::testing::HasSubstr("2 calls to xds:///greeter: 0 ok, 2 failed")) << out;
  EXPECT_THAT(out, ::testing::HasSubstr("call 1 failed: ")) << out;
}

}  // namespace
}  // namespace muster::testing
