#include "support/musterd_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "support/child_process.h"
#include "support/run_command.h"

namespace muster::testing {
namespace {

constexpr char kListening[] = "listening on 127.0.0.1:";
// musterd logs its xDS address before it says it listens.
constexpr char kXdsListening[] = "xDS (ADS) for xds:/// gRPC clients on 127.0.0.1:";
constexpr auto kStartDeadline = std::chrono::seconds(15);

// The port after the first `marker` ("... 127.0.0.1:") in `logs`, once the
// number is complete (followed by another character).
std::optional<uint16_t> FindListeningPort(std::string_view logs, std::string_view marker = kListening) {
  size_t at = logs.find(marker);
  if (at == std::string_view::npos) return std::nullopt;
  size_t begin = at + marker.size();
  size_t end = begin;
  while (end < logs.size() && logs[end] >= '0' && logs[end] <= '9') ++end;
  if (end == begin || end == logs.size() || end - begin > 5) return std::nullopt;
  unsigned port = 0;
  for (size_t i = begin; i < end; ++i) port = port * 10 + static_cast<unsigned>(logs[i] - '0');
  if (port == 0 || port > 65535) return std::nullopt;
  return static_cast<uint16_t>(port);
}

}  // namespace

MusterdProcess::MusterdProcess(std::string binary) : binary_(std::move(binary)) {}

MusterdProcess::~MusterdProcess() {
  Kill9();
  if (!data_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(data_dir_, ec);
  }
}

std::string MusterdProcess::address() const { return absl::StrCat("127.0.0.1:", port_); }

std::string MusterdProcess::xds_address() const {
  return xds_port_ == 0 ? std::string() : absl::StrCat("127.0.0.1:", xds_port_);
}

std::string MusterdProcess::Logs() const {
  std::lock_guard lock(mu_);
  return logs_;
}

absl::Status MusterdProcess::Start(const std::vector<std::string>& extra_args) {
  if (pid_ > 0) return absl::FailedPreconditionError("musterd is already running");
  IgnoreSigpipe();
  if (data_dir_.empty()) {
    auto dir = MakeTempDir("musterd-test");
    if (!dir.ok()) return dir.status();
    data_dir_ = *std::move(dir);
  }

  std::vector<std::string> args = {binary_, "--listen", "127.0.0.1:0", "--data-dir", data_dir_};
  // The xDS server on a free port too, unless the test chose one: the
  // default port would be shared by every test's musterd.
  bool xds_given = false;
  for (const std::string& a : extra_args) xds_given |= a.rfind("--xds-listen", 0) == 0;
  if (!xds_given) args.insert(args.end(), {"--xds-listen", "127.0.0.1:0"});
  args.insert(args.end(), extra_args.begin(), extra_args.end());

  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe2: ", std::strerror(errno)));
  }
  size_t run_start;
  {
    std::lock_guard lock(mu_);
    absl::StrAppend(&logs_, "=== ", absl::StrJoin(args, " "), "\n");
    run_start = logs_.size();
    output_closed_ = false;
  }

  absl::StatusOr<pid_t> pid = SpawnChild(args, fds[1], "musterd");
  close(fds[1]);
  if (!pid.ok()) {
    close(fds[0]);
    std::lock_guard lock(mu_);
    output_closed_ = true;
    return pid.status();
  }
  pid_ = *pid;
  port_ = 0;
  reader_ = std::thread(&MusterdProcess::ReaderLoop, this, fds[0]);

  const auto deadline = std::chrono::steady_clock::now() + kStartDeadline;
  std::optional<uint16_t> port;
  bool closed = false;
  {
    std::unique_lock lock(mu_);
    output_changed_.wait_until(lock, deadline, [&] {
      port = FindListeningPort(std::string_view(logs_).substr(run_start));
      closed = output_closed_;
      return port.has_value() || closed;
    });
  }
  if (port) {
    port_ = *port;
    std::lock_guard lock(mu_);
    xds_port_ = FindListeningPort(std::string_view(logs_).substr(run_start), kXdsListening).value_or(0);
    return absl::OkStatus();
  }
  if (closed) {
    int status = 0;
    waitpid(pid_, &status, 0);
    Reap(status);
    return absl::UnavailableError(
        absl::StrCat("musterd exited before listening (", DescribeWaitStatus(status),
                     "); output:\n", Logs()));
  }
  Kill9();
  return absl::DeadlineExceededError(absl::StrCat(
      "musterd did not print \"", kListening, "PORT\" within 15 s; output:\n", Logs()));
}

absl::Status MusterdProcess::UseDataDir(std::string dir) {
  if (!data_dir_.empty()) return absl::FailedPreconditionError("the data directory is already chosen");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  data_dir_ = std::move(dir);
  return absl::OkStatus();
}

absl::Status MusterdProcess::Restart(const std::vector<std::string>& extra_args) {
  if (data_dir_.empty()) return absl::FailedPreconditionError("musterd was never started");
  return Start(extra_args);
}

void MusterdProcess::Kill9() {
  if (pid_ <= 0) return;
  Reap(KillAndReap(pid_));
}

int MusterdProcess::Terminate(std::chrono::milliseconds deadline) {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  std::optional<int> status = WaitForExit(pid_, deadline);
  if (!status) {
    {
      std::lock_guard lock(mu_);
      absl::StrAppend(&logs_, "=== no exit within ", deadline.count(),
                      " ms of SIGTERM; sending SIGKILL\n");
    }
    Kill9();
    return -1;
  }
  Reap(*status);
  return ExitCodeOf(*status);
}

void MusterdProcess::Reap(int wait_status) {
  if (reader_.joinable()) reader_.join();
  pid_ = -1;
  std::lock_guard lock(mu_);
  absl::StrAppend(&logs_, "=== musterd ended: ", DescribeWaitStatus(wait_status), "\n");
}

void MusterdProcess::ReaderLoop(int fd) {
  char buf[4096];
  while (true) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    std::lock_guard lock(mu_);
    logs_.append(buf, static_cast<size_t>(n));
    output_changed_.notify_all();
  }
  close(fd);
  std::lock_guard lock(mu_);
  output_closed_ = true;
  output_changed_.notify_all();
}

}  // namespace muster::testing
