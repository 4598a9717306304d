// The script probe with real programs: shell scripts written to a temporary
// directory (exit codes, output, sleeping past the timeout, children left
// behind), /bin/echo for arguments without a shell, and programs that
// cannot run.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/strings.h"
#include "server/async_util.h"
#include "server/health/probe.h"
#include "unit/health/probe_test_support.h"
#include "support/run_command.h"
#include "support/status_matchers.h"

namespace muster {
namespace {

using std::chrono::milliseconds;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing::StatusIs;

using probe_test::Describe;
using probe_test::IoThreads;
using probe_test::kWait;
using probe_test::PendingRun;

// True once `pid` is gone or a zombie (dead, not yet reaped by its parent,
// which for an orphan is not this process).
bool Dead(pid_t pid) {
  std::ifstream stat(StrCat("/proc/", pid, "/stat"));
  if (!stat) return true;
  std::string line;
  std::getline(stat, line);
  // "pid (comm) S ...": the state follows the last ')'.
  const size_t paren = line.rfind(')');
  return paren == std::string::npos || line.size() < paren + 3 || line[paren + 2] == 'Z';
}

bool DiesWithin(pid_t pid, milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!Dead(pid)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return true;
}

class ScriptProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = testing::MakeTempDir("muster-script-probe");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // An executable /bin/sh script DIR/NAME with `body`.
  std::string Script(const std::string& name, const std::string& body, mode_t mode = 0755) {
    const std::string path = StrCat(dir_, "/", name);
    std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
    chmod(path.c_str(), mode);
    return path;
  }

  std::shared_ptr<Probe> Make(const std::string& program, std::vector<std::string> args = {}) {
    Check check;
    check.id = "script";
    check.type = CheckType::kScript;
    check.target = program;
    check.args = std::move(args);
    auto probe = MakeScriptProbe(check, instance_, ProbeEnvironment{io_.executor(), true});
    EXPECT_TRUE(probe.ok()) << probe.status();
    return probe.ok() ? *probe : nullptr;
  }

  std::optional<ProbeResult> RunOnce(Probe& probe, milliseconds timeout = milliseconds(10000)) {
    return PendingRun(probe, timeout).Wait();
  }

  IoThreads io_;
  std::string dir_;
  Instance instance_;
};

// Exit 0 passing, 1 warning, anything else critical; stdout and stderr
// together are the output.
TEST_F(ScriptProbeTest, ExitStatusDecides) {
  auto ok = Make(Script("ok.sh", "echo fine; exit 0"));
  auto warn = Make(Script("warn.sh", "echo disk at 85%; exit 1"));
  auto bad = Make(Script("bad.sh", "echo out; echo err >&2; exit 2"));
  ASSERT_TRUE(ok && warn && bad);
  EXPECT_EQ(Describe(RunOnce(*ok)), "passing: fine\n");
  EXPECT_EQ(Describe(RunOnce(*warn)), "warning: disk at 85%\n");
  EXPECT_EQ(Describe(RunOnce(*bad)), "critical: out\nerr\n");
}

// No output: the exit code stands in. stdin is /dev/null (cat ends at once).
TEST_F(ScriptProbeTest, SilentProgramAndEmptyStdin) {
  auto cat = Make("/bin/cat");
  ASSERT_NE(cat, nullptr);
  EXPECT_EQ(Describe(RunOnce(*cat)), "passing: exit code 0");
  auto quiet = Make(Script("quiet.sh", "exit 3"));
  ASSERT_NE(quiet, nullptr);
  EXPECT_EQ(Describe(RunOnce(*quiet)), "critical: exit code 3");
}

// Arguments go to the program as they are: no shell expands them. A bare
// name is looked up in PATH.
TEST_F(ScriptProbeTest, ArgumentsWithoutShell) {
  auto probe = Make("echo", {"a  b", "$HOME", "*", "`id`"});
  ASSERT_NE(probe, nullptr);
  EXPECT_EQ(Describe(RunOnce(*probe)), "passing: a  b $HOME * `id`\n");
}

// Output past the limit is cut (with a note); the rest is drained, so the
// program does not block on a full pipe and its exit status counts.
TEST_F(ScriptProbeTest, LongOutputIsCut) {
  auto probe = Make(Script("long.sh", "i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done; exit 1"));
  ASSERT_NE(probe, nullptr);
  auto result = RunOnce(*probe);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, Health::kWarning);
  EXPECT_THAT(result->output, StartsWith("line 0\nline 1\n"));
  EXPECT_LE(result->output.size(), kMaxCheckOutputBytes);
  EXPECT_THAT(result->output, EndsWith("(output cut)"));
}

// Past the timeout the whole process group is killed (the script and the
// child it left in the background) and the run is critical.
TEST_F(ScriptProbeTest, TimeoutKillsTheProcessGroup) {
  auto probe = Make(Script("slow.sh", "sleep 60 &\necho $$ $!\nwait"));
  ASSERT_NE(probe, nullptr);
  auto result = RunOnce(*probe, milliseconds(500));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, Health::kCritical);
  ASSERT_THAT(result->output, StartsWith("timed out after 500ms\n"));
  std::istringstream pids(result->output.substr(result->output.find('\n') + 1));
  pid_t script = 0;
  pid_t background = 0;
  pids >> script >> background;
  ASSERT_GT(script, 0) << result->output;
  ASSERT_GT(background, 0) << result->output;
  // The script was reaped before `done` ran; its group is gone soon after
  // (SIGKILL reaches the background child at once, but it dies on its own
  // schedule).
  EXPECT_TRUE(Dead(script));
  EXPECT_TRUE(DiesWithin(background, milliseconds(5000)));
  errno = 0;
  EXPECT_EQ(kill(script, 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

// A program that closes its output and goes on running is still killed at
// the timeout.
TEST_F(ScriptProbeTest, ClosedOutputDoesNotEndTheRun) {
  auto probe = Make(Script("detached.sh", "exec >/dev/null 2>&1\nsleep 60"));
  ASSERT_NE(probe, nullptr);
  EXPECT_EQ(Describe(RunOnce(*probe, milliseconds(300))), "critical: timed out after 300ms");
}

// Death by a signal is critical and says which.
TEST_F(ScriptProbeTest, KilledBySignal) {
  auto probe = Make(Script("term.sh", "echo bye\nkill -TERM $$"));
  ASSERT_NE(probe, nullptr);
  EXPECT_EQ(Describe(RunOnce(*probe)), "critical: killed by signal 15 (SIGTERM)\nbye\n");
}

// The program inherits none of musterd's descriptors, even those without
// close-on-exec.
TEST_F(ScriptProbeTest, NoDescriptorsLeak) {
  const int leaky = open("/dev/null", O_RDONLY);  // deliberately not O_CLOEXEC
  ASSERT_GE(leaky, 3);
  auto probe = Make(Script("fds.sh", StrCat("if [ -e /proc/$$/fd/", leaky,
                                            " ]; then echo leaked; exit 2; fi; echo clean")));
  ASSERT_NE(probe, nullptr);
  EXPECT_EQ(Describe(RunOnce(*probe)), "passing: clean\n");
  close(leaky);
}

// Programs that cannot run: critical, saying why.
TEST_F(ScriptProbeTest, ProgramThatCannotRun) {
  auto missing = Make(StrCat(dir_, "/missing"));
  ASSERT_NE(missing, nullptr);
  EXPECT_EQ(Describe(RunOnce(*missing)),
            StrCat("critical: cannot run ", dir_, "/missing: No such file or directory"));
  auto not_executable = Make(Script("plain.sh", "exit 0", 0644));
  ASSERT_NE(not_executable, nullptr);
  EXPECT_EQ(Describe(RunOnce(*not_executable)),
            StrCat("critical: cannot run ", dir_, "/plain.sh: Permission denied"));
}

// Cancel kills a running program long before its timeout; later runs end at
// once without starting it.
TEST_F(ScriptProbeTest, CancelEndsTheRunInFlight) {
  const std::string marker = StrCat(dir_, "/started");
  auto probe = Make(Script("sleepy.sh", StrCat("echo >> ", marker, "\nexec sleep 60")));
  ASSERT_NE(probe, nullptr);
  PendingRun run(*probe, std::chrono::minutes(5));
  for (int i = 0; i < 2000 && !std::filesystem::exists(marker); ++i) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  probe->Cancel();
  EXPECT_EQ(Describe(run.Wait()), "critical: cancelled");
  std::filesystem::remove(marker);
  EXPECT_EQ(Describe(RunOnce(*probe, std::chrono::minutes(5))), "critical: cancelled");
  EXPECT_FALSE(std::filesystem::exists(marker));
}

// Script checks are refused unless enabled.
TEST_F(ScriptProbeTest, RefusedWhenDisabled) {
  Check check;
  check.id = "script";
  check.type = CheckType::kScript;
  check.target = "/bin/true";
  EXPECT_THAT(MakeScriptProbe(check, instance_, ProbeEnvironment{io_.executor(), false}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("--enable-script-checks")));
  EXPECT_THAT(MakeProbe(check, instance_, ProbeEnvironment{io_.executor(), false}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("--enable-script-checks")));
  check.target = "";
  EXPECT_THAT(MakeScriptProbe(check, instance_, ProbeEnvironment{io_.executor(), true}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("check \"script\"")));
}

}  // namespace
}  // namespace muster
