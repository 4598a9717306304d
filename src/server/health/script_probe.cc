// The script check: runs a program with arguments (no shell) and judges its
// exit status the Nagios/Consul way: 0 passing, 1 warning, anything else
// (or death by a signal) critical. Its stdout and stderr, together, are the
// output.
//
// musterd is multithreaded, so the child is made with posix_spawn (no code
// of ours runs between fork and exec) and inherits no descriptor but its
// stdin (/dev/null), stdout and stderr (one pipe). It leads a process group
// of its own, so that a timeout or Cancel can kill whatever it started, too.
//
// Nothing blocks a thread: the pipe is read on the I/O threads, and the
// child is reaped by polling waitpid(pid, WNOHANG) on a timer once the pipe
// is closed. (A SIGCHLD handler, or waitpid(-1), would take the statuses of
// children that other parts of the process wait for.) A child that closes
// its output and goes on running is still killed at the timeout; so is one
// whose own children keep the pipe open after it exited.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <boost/asio/posix/stream_descriptor.hpp>

#include "absl/base/thread_annotations.h"
#include "core/duration.h"
#include "core/strings.h"
#include "server/async_util.h"
#include "server/health/probe.h"
#include "server/health/strand_probe.h"

extern char** environ;

namespace muster {
namespace {

using boost::system::error_code;
using std::chrono::milliseconds;
using SteadyTime = std::chrono::steady_clock::time_point;

// How often a child that closed its output is asked whether it exited: the
// first poll comes soon (most children exit right after), then less often.
constexpr milliseconds kFirstReapPoll{1};
constexpr milliseconds kMaxReapPoll{50};
// After SIGKILL a child is gone almost at once; one that is not (stuck in
// the kernel) does not hold up the result longer than this, and is reaped
// later.
constexpr milliseconds kReapGrace{1000};

std::string ErrnoMessage(int error) { return std::generic_category().message(error); }

// What a waitpid() status means for the check.
ProbeResult Judge(int wait_status, std::string output) {
  ProbeResult result{Health::kCritical, std::move(output)};
  if (WIFEXITED(wait_status)) {
    const int code = WEXITSTATUS(wait_status);
    if (code == 0) result.status = Health::kPassing;
    if (code == 1) result.status = Health::kWarning;
    if (result.output.empty()) result.output = StrCat("exit code ", code);
  } else if (WIFSIGNALED(wait_status)) {
    const int signal = WTERMSIG(wait_status);
    const char* name = sigabbrev_np(signal);
    std::string what = StrCat("killed by signal ", signal, name ? " (SIG" : "", name ? name : "",
                              name ? ")" : "");
    result.output = result.output.empty() ? what : StrCat(what, "\n", result.output);
  }
  return result;
}

class ScriptProbe;

// One run: lives until the child is reaped (or the I/O threads stop);
// touched only on `strand`.
struct ScriptRun {
  ScriptRun(std::shared_ptr<ScriptProbe> p, asio::any_io_executor ex, milliseconds t,
            ProbeCallback d)
      : probe(std::move(p)),
        strand(std::move(ex)),
        timeout(t),
        done(std::move(d)),
        pipe(strand),
        watchdog(strand),
        poll(strand) {}

  // The I/O threads stopped with the child still running: do not leave it.
  ~ScriptRun() {
    if (pid > 0 && !reaped) {
      kill(-pid, SIGKILL);
      waitpid(pid, nullptr, WNOHANG);
    }
  }

  // Reports `result` unless a result went out already. On the strand.
  void Finish(ProbeResult result) {
    if (finished) return;
    finished = true;
    watchdog.cancel();
    result.output = BoundedOutput(std::move(result.output), "script check failed");
    std::move(done)(std::move(result));
  }

  // Ends the run (timeout, Cancel): kills the child's process group and
  // stops reading; the result is `reason` once the child is reaped. On the
  // strand.
  void Stop(std::string reason) {
    if (finished || stop_reason) return;
    stop_reason = std::move(reason);
    stopped_at = std::chrono::steady_clock::now();
    // Only while the child is unreaped: then its pid (= the group id) cannot
    // have been reused.
    if (pid > 0 && !reaped) kill(-pid, SIGKILL);
    error_code ignored;
    pipe.close(ignored);
  }

  // The result of a run that Stop ended, with what the child wrote first.
  ProbeResult Stopped() const {
    return {Health::kCritical, output.empty() ? *stop_reason : StrCat(*stop_reason, "\n", output)};
  }

  const std::shared_ptr<ScriptProbe> probe;  // kept alive while the run is in flight
  const asio::strand<asio::any_io_executor> strand;
  const milliseconds timeout;
  ProbeCallback done;
  asio::posix::stream_descriptor pipe;  // the read end of the child's stdout+stderr
  asio::steady_timer watchdog;
  asio::steady_timer poll;
  pid_t pid = -1;
  bool reaped = false;
  std::string output;  // at most kMaxCheckOutputBytes + 1: one more says "cut"
  std::optional<std::string> stop_reason;
  SteadyTime stopped_at;
  bool finished = false;  // `done` ran
};

class ScriptProbe final : public StrandProbe<ScriptProbe, ScriptRun> {
 public:
  ScriptProbe(std::string program, std::vector<std::string> args, asio::any_io_executor executor)
      : StrandProbe(std::move(executor)),
        program_(std::move(program)), args_(std::move(args)) {}

 private:
  friend class StrandProbe<ScriptProbe, ScriptRun>;
  static awaitable<void> Go(std::shared_ptr<ScriptRun> run);
  // Starts the child with its output on a new pipe: run.pid and run.pipe.
  // An error message when it cannot.
  std::optional<std::string> Spawn(ScriptRun& run) const;
  static awaitable<void> ReadOutput(ScriptRun& run);
  static awaitable<int> Reap(ScriptRun& run);

  // Constant after construction.
  const std::string program_;
  const std::vector<std::string> args_;
};

awaitable<void> ScriptProbe::Go(std::shared_ptr<ScriptRun> run) {
  if (run->stop_reason) {
    run->Finish(run->Stopped());
    co_return;
  }
  if (auto error = run->probe->Spawn(*run)) {
    run->Finish({Health::kCritical, std::move(*error)});
    co_return;
  }
  run->watchdog.expires_after(run->timeout);
  run->watchdog.async_wait([run](error_code ec) {
    if (!ec) run->Stop(StrCat("timed out after ", FormatDuration(run->timeout)));
  });
  try {
    co_await ReadOutput(*run);
    const int wait_status = co_await Reap(*run);
    if (run->stop_reason) {
      run->Finish(run->Stopped());
    } else if (wait_status < 0) {
      run->Finish({Health::kCritical,
                   StrCat("the exit status of ", run->probe->program_, " was lost\n", run->output)});
    } else {
      run->Finish(Judge(wait_status, std::move(run->output)));
    }
  } catch (const std::exception& e) {
    run->Stop(StrCat("internal error: ", e.what()));
    run->Finish(run->Stopped());
  }
}

std::optional<std::string> ScriptProbe::Spawn(ScriptRun& run) const {
  const std::string failed = StrCat("cannot run ", program_, ": ");
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return StrCat(failed, "pipe: ", ErrnoMessage(errno));

  // The child's descriptors: stdin /dev/null, stdout and stderr the pipe,
  // nothing else (musterd's sockets are not all close-on-exec).
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);

  // Its own process group, no blocked signals, and default dispositions
  // (musterd ignores SIGPIPE; a script should not).
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  posix_spawnattr_setflags(&attributes,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attributes, 0);
  sigset_t signals;
  sigemptyset(&signals);
  posix_spawnattr_setsigmask(&attributes, &signals);
  sigfillset(&signals);
  sigdelset(&signals, SIGKILL);
  sigdelset(&signals, SIGSTOP);
  posix_spawnattr_setsigdefault(&attributes, &signals);

  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(program_.c_str()));
  for (const std::string& arg : args_) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);

  // posix_spawnp looks the program up in PATH only when it has no '/', as
  // execvp does. glibc reports a failed exec here, as the return value.
  pid_t pid = -1;
  const int error = posix_spawnp(&pid, program_.c_str(), &actions, &attributes, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  close(fds[1]);
  if (error != 0) {
    close(fds[0]);
    return StrCat(failed, ErrnoMessage(error));
  }
  run.pid = pid;
  run.pipe.assign(fds[0]);
  return std::nullopt;
}

// Until the child (and whatever inherited its output) closes the pipe, or
// Stop closes our end. Output past the limit is read and dropped, so the
// child never blocks on a full pipe.
awaitable<void> ScriptProbe::ReadOutput(ScriptRun& run) {
  std::array<char, 4096> buffer;
  for (;;) {
    auto [ec, n] = co_await run.pipe.async_read_some(asio::buffer(buffer), use_tuple);
    const size_t keep = std::min(n, kMaxCheckOutputBytes + 1 - run.output.size());
    run.output.append(buffer.data(), keep);
    if (ec) break;  // end of file, or closed by Stop
  }
  error_code ignored;
  run.pipe.close(ignored);
}

// The child's waitpid() status, -1 when it was lost (someone else reaped
// the child). Gives up waiting on the result, not on the child: a run that
// Stop ended reports after kReapGrace even if the child is still there.
awaitable<int> ScriptProbe::Reap(ScriptRun& run) {
  milliseconds interval = kFirstReapPoll;
  for (;;) {
    int wait_status = 0;
    const pid_t reaped = waitpid(run.pid, &wait_status, WNOHANG);
    if (reaped == run.pid) {
      run.reaped = true;
      co_return wait_status;
    }
    if (reaped < 0 && errno != EINTR) {
      run.reaped = true;
      co_return -1;
    }
    if (run.stop_reason && std::chrono::steady_clock::now() - run.stopped_at > kReapGrace) {
      run.Finish(run.Stopped());
    }
    run.poll.expires_after(interval);
    co_await run.poll.async_wait(use_tuple);
    interval = std::min(interval * 2, kMaxReapPoll);
  }
}

}  // namespace

absl::StatusOr<std::shared_ptr<Probe>> MakeScriptProbe(const Check& check, const Instance& /*instance*/,
                                                       const ProbeEnvironment& env) {
  if (!env.enable_script_checks) {
    return absl::FailedPreconditionError(
        "script checks are disabled (musterd --enable-script-checks)");
  }
  if (check.target.empty()) {
    return absl::InvalidArgumentError(
        StrCat("check \"", check.id, "\": a script check needs the program as its target"));
  }
  if (check.target.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(StrCat("check \"", check.id, "\": the program has a NUL byte"));
  }
  for (const std::string& arg : check.args) {
    if (arg.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(StrCat("check \"", check.id, "\": an argument has a NUL byte"));
    }
  }
  return std::make_shared<ScriptProbe>(check.target, check.args, env.executor);
}

}  // namespace muster
