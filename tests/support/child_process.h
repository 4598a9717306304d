// Starting and stopping the long-running children of a test (musterd, etcd):
// what MusterdProcess and EtcdCluster share. For a program that runs to
// completion, use RunCommand (run_command.h).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace muster::testing {

// Forks and execs args[0] (a path, not looked up in $PATH) with `args`, stdin
// from /dev/null, and stdout and stderr both on `output_fd` (the caller keeps
// and closes its own copy; open it O_CLOEXEC so that no other child inherits
// it). When the exec fails, the child writes "exec of NAME failed" to
// `output_fd` and exits with 127.
//
// The child gets SIGKILL when the calling *thread* ends (PR_SET_PDEATHSIG), so
// a crashed or killed test never leaves it behind: spawn from the test's own
// thread, not from a helper thread that finishes earlier.
absl::StatusOr<pid_t> SpawnChild(const std::vector<std::string>& args, int output_fd,
                                 std::string_view name);

// SIGKILL and reap. Returns the waitpid() status (0 when waitpid failed).
int KillAndReap(pid_t pid);

// Waits up to `timeout` for the child `pid` to exit and reaps it. Returns the
// waitpid() status (0 when waitpid failed), or nullopt when the child still
// runs at the deadline.
std::optional<int> WaitForExit(pid_t pid, std::chrono::milliseconds timeout);

}  // namespace muster::testing
