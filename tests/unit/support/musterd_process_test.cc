// MusterdProcess against a /bin/sh stand-in for musterd, so that its process
// handling is tested without the real server.
#include "support/musterd_process.h"

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/run_command.h"

namespace muster::testing {
namespace {

using ::testing::HasSubstr;

// Writes an executable script into a temporary directory, removed at the end.
class FakeMusterd {
 public:
  explicit FakeMusterd(const std::string& body) {
    auto dir = MakeTempDir("fake-musterd");
    EXPECT_TRUE(dir.ok());
    dir_ = dir.value_or("/tmp");
    path_ = dir_ + "/musterd";
    std::ofstream(path_) << "#!/bin/sh\n" << body;
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all);
  }
  ~FakeMusterd() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string dir_;
  std::string path_;
};

// Announces a port like musterd, echoes its arguments, and exits 0 on SIGTERM.
// The trap is set before the "listening" line, as musterd installs its signal
// handling before it says it serves: a SIGTERM right after Start must not kill
// the shell before the trap exists.
constexpr char kWellBehaved[] =
    "trap 'echo stopping; exit 0' TERM\n"
    "echo \"[info] xDS (ADS) for xds:/// gRPC clients on 127.0.0.1:4322\" >&2\n"
    "echo \"[info] musterd listening on 127.0.0.1:4321 (2 I/O threads)\" >&2\n"
    "echo \"args: $*\"\n"
    "while :; do sleep 0.05; done\n";

// Start learns the port from the log line and passes the documented flags.
TEST(MusterdProcessTest, StartParsesPortAndPassesFlags) {
  FakeMusterd fake(kWellBehaved);
  MusterdProcess process(fake.path());
  absl::Status started = process.Start({"--history", "16"});
  ASSERT_TRUE(started.ok()) << started;
  EXPECT_EQ(process.port(), 4321);
  EXPECT_EQ(process.address(), "127.0.0.1:4321");
  EXPECT_TRUE(process.running());
  EXPECT_TRUE(std::filesystem::is_directory(process.data_dir()));
  EXPECT_TRUE(WaitFor([&] { return process.Logs().find("args:") != std::string::npos; },
                      std::chrono::seconds(5)));
  EXPECT_EQ(process.xds_address(), "127.0.0.1:4322");
  EXPECT_THAT(process.Logs(), HasSubstr("args: --listen 127.0.0.1:0 --data-dir " +
                                        process.data_dir() + " --xds-listen 127.0.0.1:0 --history 16"));
}

// A test that gives --xds-listen itself gets it alone.
TEST(MusterdProcessTest, AnXdsListenGivenByTheTestIsPassedAlone) {
  FakeMusterd fake(kWellBehaved);
  MusterdProcess process(fake.path());
  ASSERT_TRUE(process.Start({"--xds-listen", ""}).ok());
  EXPECT_TRUE(WaitFor([&] { return process.Logs().find("args:") != std::string::npos; },
                      std::chrono::seconds(5)));
  EXPECT_THAT(process.Logs(), HasSubstr("args: --listen 127.0.0.1:0 --data-dir " +
                                        process.data_dir() + " --xds-listen \n"));
}

// Terminate delivers SIGTERM and returns the exit status.
TEST(MusterdProcessTest, TerminateReturnsExitStatus) {
  FakeMusterd fake(kWellBehaved);
  MusterdProcess process(fake.path());
  ASSERT_TRUE(process.Start().ok());
  EXPECT_EQ(process.Terminate(), 0);
  EXPECT_FALSE(process.running());
  EXPECT_THAT(process.Logs(), HasSubstr("stopping"));
}

// A child that ignores SIGTERM is killed at the deadline and reported as -1.
TEST(MusterdProcessTest, TerminateKillsAfterDeadline) {
  FakeMusterd fake(
      "trap '' TERM\n"
      "echo \"musterd listening on 127.0.0.1:4321\" >&2\n"
      "while :; do sleep 0.05; done\n");
  MusterdProcess process(fake.path());
  ASSERT_TRUE(process.Start().ok());
  EXPECT_EQ(process.Terminate(std::chrono::milliseconds(300)), -1);
  EXPECT_FALSE(process.running());
}

// Kill9 ends the child; Restart starts it again on the same data directory.
TEST(MusterdProcessTest, RestartKeepsDataDir) {
  FakeMusterd fake(kWellBehaved);
  MusterdProcess process(fake.path());
  ASSERT_TRUE(process.Start().ok());
  const std::string dir = process.data_dir();
  const pid_t first = process.pid();
  process.Kill9();
  EXPECT_FALSE(process.running());
  EXPECT_EQ(kill(first, 0), -1) << "the first child is still there";
  ASSERT_TRUE(process.Restart().ok());
  EXPECT_NE(process.pid(), first);
  EXPECT_EQ(process.data_dir(), dir);
  EXPECT_THAT(process.Logs(), HasSubstr("killed by signal 9"));
}

// Starting twice is refused.
TEST(MusterdProcessTest, StartWhileRunningFails) {
  FakeMusterd fake(kWellBehaved);
  MusterdProcess process(fake.path());
  ASSERT_TRUE(process.Start().ok());
  EXPECT_EQ(process.Start().code(), absl::StatusCode::kFailedPrecondition);
}

// A child that exits before listening makes Start fail with its output.
TEST(MusterdProcessTest, ExitBeforeListeningFails) {
  FakeMusterd fake("echo 'cannot open the store' >&2\nexit 1\n");
  MusterdProcess process(fake.path());
  absl::Status started = process.Start();
  EXPECT_EQ(started.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(started.message(), HasSubstr("exit code 1"));
  EXPECT_THAT(started.message(), HasSubstr("cannot open the store"));
  EXPECT_FALSE(process.running());
}

// A missing binary fails the same way.
TEST(MusterdProcessTest, MissingBinaryFails) {
  MusterdProcess process("/nonexistent/musterd");
  absl::Status started = process.Start();
  EXPECT_EQ(started.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(started.message(), HasSubstr("exec of musterd failed"));
}

// The destructor kills the child and removes the data directory.
TEST(MusterdProcessTest, DestructorCleansUp) {
  FakeMusterd fake(kWellBehaved);
  std::string dir;
  pid_t pid = 0;
  {
    MusterdProcess process(fake.path());
    ASSERT_TRUE(process.Start().ok());
    dir = process.data_dir();
    pid = process.pid();
  }
  EXPECT_FALSE(std::filesystem::exists(dir));
  EXPECT_EQ(kill(pid, 0), -1);
}

// Output far beyond a pipe buffer is drained, so the child never blocks.
TEST(MusterdProcessTest, DrainsLargeOutput) {
  FakeMusterd fake(
      "echo \"musterd listening on 127.0.0.1:4321\" >&2\n"
      "i=0; while [ $i -lt 4000 ]; do echo \"log line $i with some padding to fill the pipe\" >&2; "
      "i=$((i+1)); done\n"
      "echo done-logging >&2\n"
      "trap 'exit 0' TERM\n"
      "while :; do sleep 0.05; done\n");
  MusterdProcess process(fake.path());
  ASSERT_TRUE(process.Start().ok());
  EXPECT_TRUE(WaitFor([&] { return process.Logs().find("done-logging") != std::string::npos; },
                      std::chrono::seconds(20)));
  EXPECT_EQ(process.Terminate(), 0);
}

// WaitFor returns as soon as the predicate holds, and false at the timeout.
TEST(MusterdProcessTest, WaitForPollsUntilTrueOrTimeout) {
  int calls = 0;
  EXPECT_TRUE(WaitFor([&] { return ++calls == 3; }, std::chrono::seconds(5),
                      std::chrono::milliseconds(1)));
  EXPECT_EQ(calls, 3);
  EXPECT_FALSE(WaitFor([] { return false; }, std::chrono::milliseconds(50)));
}

}  // namespace
}  // namespace muster::testing
