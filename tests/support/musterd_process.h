// Runs a real musterd for an integration test: a fresh data directory, port 0 on
// loopback, and the server's log kept for failure messages.
//
// Example:
//   muster::testing::MusterdProcess musterd(MUSTERD_PATH);
//   absl::Status started = musterd.Start({"--history", "16"});
//   ASSERT_TRUE(started.ok()) << started;  // the message carries musterd's output
//   muster::wire::HttpClient client(musterd.address());
//   ...
//   musterd.Kill9();
//   ASSERT_TRUE(musterd.Restart().ok());
//
// A MusterdProcess is used from one test thread; Logs() may be called from any.
// The child dies with that thread (PR_SET_PDEATHSIG), so a crashed or killed
// test never leaves a musterd behind: start it from the test's own thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"

namespace muster::testing {

class MusterdProcess {
 public:
  // `binary` is the path of musterd. Nothing runs until Start().
  explicit MusterdProcess(std::string binary);
  // Kills a running child (SIGKILL) and removes the data directory.
  ~MusterdProcess();
  MusterdProcess(const MusterdProcess&) = delete;
  MusterdProcess& operator=(const MusterdProcess&) = delete;

  // Creates the data directory (first call only), spawns
  //   musterd --listen 127.0.0.1:0 --data-dir DIR [--xds-listen 127.0.0.1:0] extra_args...
  // and waits up to 15 s for "listening on 127.0.0.1:PORT" in its output
  // (stdout and stderr share one pipe). FailedPrecondition when already
  // running, Unavailable when musterd exited first, DeadlineExceeded when it
  // never said it listens (it is killed then); the message carries its output.
  absl::Status Start(const std::vector<std::string>& extra_args = {});

  // Runs musterd on `dir` (created when missing) rather than on a fresh
  // temporary directory; before the first Start() only. The directory is
  // removed with the MusterdProcess, as a temporary one would be.
  absl::Status UseDataDir(std::string dir);

  // Starts musterd again on the same data directory after Kill9() or
  // Terminate(). The port is new.
  absl::Status Restart(const std::vector<std::string>& extra_args = {});

  // SIGKILL and reap: the crash a durable store must survive.
  void Kill9();

  // SIGTERM and wait up to `deadline` for the exit. Returns the exit code, or
  // 128 + signal when a signal ended it, or -1 when it did not exit in time
  // (it is SIGKILLed then). Returns -1 as well when nothing was running.
  int Terminate(std::chrono::milliseconds deadline = std::chrono::seconds(15));

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  uint16_t port() const { return port_; }
  // "127.0.0.1:PORT" of the current run.
  std::string address() const;
  // "127.0.0.1:PORT" of the current run's xDS server; empty when it serves
  // none. Start passes --xds-listen 127.0.0.1:0 unless the test gives
  // --xds-listen itself.
  std::string xds_address() const;
  const std::string& data_dir() const { return data_dir_; }

  // Everything musterd wrote to stdout and stderr in every run so far, each run
  // headed by its command line.
  std::string Logs() const;

 private:
  // Joins the reader thread once the child is gone and the pipe hit EOF.
  void Reap(int wait_status);
  void ReaderLoop(int fd);

  // Constant after construction.
  const std::string binary_;

  // Touched by the owning test thread only.
  std::string data_dir_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  uint16_t xds_port_ = 0;
  std::thread reader_;

  // Shared with the reader thread, which drains the child's output so that it
  // never blocks on a full pipe. (std::mutex rather than absl::Mutex: the
  // system's abseil is not built for ThreadSanitizer, which would then not see
  // its synchronization.)
  mutable std::mutex mu_;
  std::condition_variable output_changed_;
  std::string logs_;            // guarded by mu_
  bool output_closed_ = true;   // guarded by mu_
};

// Polls `predicate` every `interval` until it returns true or `timeout` passes;
// returns its last answer. For conditions no request can wait on.
template <typename Predicate>
bool WaitFor(Predicate predicate, std::chrono::milliseconds timeout,
             std::chrono::milliseconds interval = std::chrono::milliseconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (predicate()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
}

}  // namespace muster::testing
