// Running a program to completion from a test (musterctl, mostly), and the
// small process helpers MusterdProcess shares.
#pragma once

#include <chrono>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace muster::testing {

struct CommandResult {
  // The exit code; 128 + signal when a signal ended it; -1 when it could not be
  // started or was killed after the timeout (`err` then says why).
  int exit_code = -1;
  std::string out;  // everything written to stdout
  std::string err;  // everything written to stderr
};

// "exit N", then stdout and stderr: for failure messages.
std::ostream& operator<<(std::ostream& os, const CommandResult& result);

// Runs argv[0] (a path, not looked up in $PATH) with `argv`, feeding `input` on
// stdin (or /dev/null when absent), and waits up to `timeout` for it to exit.
CommandResult RunCommand(const std::vector<std::string>& argv,
                         const std::optional<std::string>& input = std::nullopt,
                         std::chrono::milliseconds timeout = std::chrono::seconds(30));

// A fresh empty directory $TMPDIR/PREFIX-XXXXXX (or under /tmp).
absl::StatusOr<std::string> MakeTempDir(std::string_view prefix);

// Makes a write to a pipe or socket whose reader has gone an EPIPE error in
// this process instead of a SIGPIPE that kills the test. Idempotent. Children
// spawned by RunCommand and MusterdProcess get the default disposition back.
void IgnoreSigpipe();

// The shell's view of a waitpid() status: exit code, or 128 + signal.
int ExitCodeOf(int wait_status);

// "exit code 3", "killed by signal 9".
std::string DescribeWaitStatus(int wait_status);

}  // namespace muster::testing
