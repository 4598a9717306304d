#include "support/run_command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"

namespace muster::testing {
namespace {

void CloseFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

}  // namespace

void IgnoreSigpipe() {
  static std::once_flag once;
  std::call_once(once, [] { signal(SIGPIPE, SIG_IGN); });
}

std::ostream& operator<<(std::ostream& os, const CommandResult& result) {
  return os << "exit " << result.exit_code << "\nstdout: " << result.out
            << "\nstderr: " << result.err;
}

int ExitCodeOf(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return -1;
}

std::string DescribeWaitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) return absl::StrCat("exit code ", WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) return absl::StrCat("killed by signal ", WTERMSIG(wait_status));
  return absl::StrCat("wait status ", wait_status);
}

absl::StatusOr<std::string> MakeTempDir(std::string_view prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string base = (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
  std::string templ = base + "/" + std::string(prefix) + "-XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp ", templ, ": ", std::strerror(errno)));
  }
  return templ;
}

CommandResult RunCommand(const std::vector<std::string>& args,
                         const std::optional<std::string>& input,
                         std::chrono::milliseconds timeout) {
  CommandResult result;
  if (args.empty()) {
    result.err = "RunCommand: empty argv";
    return result;
  }
  IgnoreSigpipe();
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (std::string& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);

  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  if ((input && pipe2(in, O_CLOEXEC) != 0) || pipe2(out, O_CLOEXEC) != 0 ||
      pipe2(err, O_CLOEXEC) != 0) {
    result.err = absl::StrCat("RunCommand: pipe2: ", std::strerror(errno));
    for (int* fd : {&in[0], &in[1], &out[0], &out[1], &err[0], &err[1]}) CloseFd(*fd);
    return result;
  }

  pid_t pid = fork();
  if (pid == 0) {
    signal(SIGPIPE, SIG_DFL);
    int stdin_fd = input ? in[0] : open("/dev/null", O_RDONLY);
    if (stdin_fd < 0 || dup2(stdin_fd, STDIN_FILENO) < 0 || dup2(out[1], STDOUT_FILENO) < 0 ||
        dup2(err[1], STDERR_FILENO) < 0) {
      _exit(127);
    }
    if (!input && stdin_fd > STDERR_FILENO) close(stdin_fd);
    execv(argv[0], argv.data());
    static constexpr char kExecFailed[] = "RunCommand: exec failed\n";
    ssize_t ignored = write(STDERR_FILENO, kExecFailed, sizeof(kExecFailed) - 1);
    (void)ignored;
    _exit(127);
  }
  int fork_errno = errno;
  CloseFd(in[0]);
  CloseFd(out[1]);
  CloseFd(err[1]);
  if (pid < 0) {
    for (int* fd : {&in[1], &out[0], &err[0]}) CloseFd(*fd);
    result.err = absl::StrCat("RunCommand: fork: ", std::strerror(fork_errno));
    return result;
  }

  // Feed stdin and drain stdout and stderr together, so that neither side
  // blocks on a full pipe.
  size_t written = 0;
  if (in[1] >= 0) {
    fcntl(in[1], F_SETFL, fcntl(in[1], F_GETFL) | O_NONBLOCK);
    if (input->empty()) CloseFd(in[1]);
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  char buf[4096];
  while (out[0] >= 0 || err[0] >= 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd fds[3];
    nfds_t n = 0;
    int* owners[3];
    for (int* fd : {&in[1], &out[0], &err[0]}) {
      if (*fd < 0) continue;
      fds[n] = {*fd, static_cast<short>(fd == &in[1] ? POLLOUT : POLLIN), 0};
      owners[n++] = fd;
    }
    int ready = poll(fds, n, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) break;
    for (nfds_t i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      int& fd = *owners[i];
      if (&fd == &in[1]) {
        ssize_t w = write(fd, input->data() + written, input->size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == input->size()) CloseFd(fd);
        continue;
      }
      ssize_t r = read(fd, buf, sizeof(buf));
      if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (r <= 0) {
        CloseFd(fd);
        continue;
      }
      (&fd == &out[0] ? result.out : result.err).append(buf, static_cast<size_t>(r));
    }
  }
  for (int* fd : {&in[1], &out[0], &err[0]}) CloseFd(*fd);

  // The child may have closed its output and still run: keep to the deadline.
  int status = 0;
  if (timed_out) kill(pid, SIGKILL);
  while (true) {
    pid_t done = waitpid(pid, &status, timed_out ? 0 : WNOHANG);
    if (done == pid || (done < 0 && errno != EINTR)) break;
    if (done == 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        timed_out = true;
        kill(pid, SIGKILL);
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
  }
  if (timed_out) {
    result.exit_code = -1;
    absl::StrAppend(&result.err, "\n[RunCommand: killed after ", timeout.count(), " ms]");
  } else {
    result.exit_code = ExitCodeOf(status);
  }
  return result;
}

}  // namespace muster::testing
