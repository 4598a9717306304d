// Child processes of the registry benchmark: the servers under test (musterd,
// etcd) run as children of the harness, on free 127.0.0.1 ports, with their
// data in a fresh temporary directory and their output in a log file there.
// A child is killed when its ServerProcess is destroyed, and dies with the
// harness (PR_SET_PDEATHSIG), so an interrupted run leaves nothing behind.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace muster::bench {

// A fresh directory under $TMPDIR (default /tmp), removed with everything in
// it on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// `count` distinct ports that were free on 127.0.0.1 a moment ago.
std::vector<uint16_t> FreeLoopbackPorts(int count);

// Whether something accepts a TCP connection on 127.0.0.1:port now.
bool LoopbackAccepts(uint16_t port);

// Raises this process's open-file limit (inherited by the servers it starts)
// to the hard limit; returns a sentence saying what it did.
std::string RaiseOpenFileLimit();

// The resident set size of `pid` in bytes (VmRSS of /proc/PID/status); 0 when
// it cannot be read.
uint64_t RssBytes(pid_t pid);

// The threads of `pid` (Threads: of /proc/PID/status); 0 when it cannot be
// read.
int ThreadCount(pid_t pid);

// CPU time `pid` has used, user and system, in seconds (utime + stime of
// /proc/PID/stat, in clock ticks: 10 ms here); -1 when it cannot be read.
double CpuSeconds(pid_t pid);

class ServerProcess {
 public:
  // Spawns argv (argv[0] is the binary's path) with stdout and stderr
  // appended to log_path. Throws std::runtime_error when it cannot.
  ServerProcess(std::vector<std::string> argv, std::string log_path);
  // SIGKILL and reap, when still running.
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool Exited();  // reaps it when it has
  void Kill();
  // SIGTERM, then SIGKILL after `seconds`.
  void Terminate(int seconds);
  // The last `bytes` of the log, for error messages.
  std::string LogTail(size_t bytes = 2000) const;

 private:
  std::string log_path_;
  pid_t pid_ = -1;
};

}  // namespace muster::bench
