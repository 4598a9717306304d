#include "support/run_command.h"

#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace muster::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// stdout, stderr and the exit code come back separately.
TEST(RunCommandTest, CapturesOutputAndExitCode) {
  CommandResult r = RunCommand({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
}

// Input is fed on stdin, even when larger than a pipe buffer.
TEST(RunCommandTest, FeedsStdin) {
  std::string input(200 * 1024, 'x');
  input += "\nend\n";
  CommandResult r = RunCommand({"/bin/cat"}, input);
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, input);
}

// Without input, stdin is at end of file at once.
TEST(RunCommandTest, StdinIsEmptyWithoutInput) {
  CommandResult r = RunCommand({"/bin/cat"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "");
}

// A signal shows as 128 + signal, as in a shell.
TEST(RunCommandTest, SignalIsReportedAs128PlusSignal) {
  CommandResult r = RunCommand({"/bin/sh", "-c", "kill -9 $$"});
  EXPECT_EQ(r.exit_code, 128 + 9);
}

// A command that outlives the timeout is killed and reported as -1.
TEST(RunCommandTest, KillsCommandAfterTimeout) {
  const auto start = std::chrono::steady_clock::now();
  CommandResult r = RunCommand({"/bin/sleep", "30"}, std::nullopt, std::chrono::milliseconds(200));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_EQ(r.exit_code, -1);
  EXPECT_THAT(r.err, HasSubstr("killed after 200 ms"));
}

// A program that cannot be executed exits 127 with a message.
TEST(RunCommandTest, MissingProgramExits127) {
  CommandResult r = RunCommand({"/nonexistent/program"});
  EXPECT_EQ(r.exit_code, 127);
  EXPECT_THAT(r.err, HasSubstr("exec failed"));
}

// MakeTempDir creates a fresh, empty, private directory under $TMPDIR or /tmp.
TEST(RunCommandTest, MakeTempDirCreatesFreshDirectory) {
  auto a = MakeTempDir("muster-unit");
  auto b = MakeTempDir("muster-unit");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_TRUE(std::filesystem::is_directory(*a));
  EXPECT_TRUE(std::filesystem::is_empty(*a));
  EXPECT_THAT(std::filesystem::path(*a).filename().string(), StartsWith("muster-unit-"));
  std::filesystem::remove(*a);
  std::filesystem::remove(*b);
}

}  // namespace
}  // namespace muster::testing
