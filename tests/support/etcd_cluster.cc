#include "support/etcd_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string_view>
#include <thread>
#include <utility>

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "rpc.grpc.pb.h"
#include "rpc.pb.h"
#include "support/child_process.h"
#include "support/musterd_process.h"
#include "support/run_command.h"

namespace muster::testing {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr int kStartAttempts = 3;
// What etcd logs when it cannot listen on a port another process holds.
constexpr std::string_view kAddressInUse = "address already in use";
// The tail of each member's log that an error message carries.
constexpr size_t kLogTailBytes = 3000;
// How long one Maintenance.Status probe may take.
constexpr milliseconds kProbeTimeout(500);
constexpr milliseconds kPollInterval(50);
// What etcd (with --logger zap) logs once it answers its peers, and how long
// Start() waits for it before spawning the next member.
constexpr std::string_view kServingPeers = "now serving peer/client/metrics";
constexpr milliseconds kServingPeersTimeout(3000);

// `count` distinct ports that were free on 127.0.0.1 a moment ago: each is
// bound with port 0, and all sockets are held until the last is picked.
absl::StatusOr<std::vector<uint16_t>> PickFreePorts(int count) {
  std::vector<int> fds;
  std::vector<uint16_t> ports;
  absl::Status status;
  for (int i = 0; i < count; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      status = absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
      break;
    }
    fds.push_back(fd);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      status = absl::InternalError(absl::StrCat("bind 127.0.0.1:0: ", std::strerror(errno)));
      break;
    }
    ports.push_back(ntohs(addr.sin_port));
  }
  for (int fd : fds) close(fd);
  if (!status.ok()) return status;
  return ports;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void AppendToFile(const std::string& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out << text;
}

std::string Url(uint16_t port) { return absl::StrCat("http://127.0.0.1:", port); }

std::string TlsUrl(uint16_t port) { return absl::StrCat("https://127.0.0.1:", port); }

// The contents of a PEM file named by `what` of EtcdClusterOptions::Tls.
absl::StatusOr<std::string> ReadPem(const std::string& path, const char* what) {
  if (path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("EtcdClusterOptions::Tls::", what, " is empty"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("EtcdClusterOptions::Tls::", what, ": cannot read ", path));
  }
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Credentials for the fixture's own channels: TLS trusting tls->ca_file (and
// presenting a client certificate when etcd asks for one), else insecure.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> FixtureCredentials(
    const std::optional<EtcdClusterOptions::Tls>& tls) {
  if (!tls.has_value()) return grpc::InsecureChannelCredentials();
  absl::StatusOr<std::string> ca = ReadPem(tls->ca_file, "ca_file");
  if (!ca.ok()) return ca.status();
  // The members need them; reading them here reports a bad path early.
  absl::StatusOr<std::string> cert = ReadPem(tls->cert_file, "cert_file");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPem(tls->key_file, "key_file");
  if (!key.ok()) return key.status();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = *std::move(ca);
  if (tls->client_cert_auth) {
    if (tls->client_cert_file.empty() != tls->client_key_file.empty()) {
      return absl::InvalidArgumentError(
          "EtcdClusterOptions::Tls: client_cert_file and client_key_file go together");
    }
    if (tls->client_cert_file.empty()) {
      ssl.pem_cert_chain = *std::move(cert);
      ssl.pem_private_key = *std::move(key);
    } else {
      absl::StatusOr<std::string> client_cert =
          ReadPem(tls->client_cert_file, "client_cert_file");
      if (!client_cert.ok()) return client_cert.status();
      absl::StatusOr<std::string> client_key = ReadPem(tls->client_key_file, "client_key_file");
      if (!client_key.ok()) return client_key.status();
      ssl.pem_cert_chain = *std::move(client_cert);
      ssl.pem_private_key = *std::move(client_key);
    }
  }
  return grpc::SslCredentials(ssl);
}

// Maintenance.Status of the member behind `channel`, waiting up to `timeout`
// for a connection.
absl::StatusOr<etcdserverpb::StatusResponse> Status(const std::shared_ptr<grpc::Channel>& channel,
                                                    milliseconds timeout) {
  auto stub = etcdserverpb::Maintenance::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  context.set_wait_for_ready(true);
  etcdserverpb::StatusResponse response;
  grpc::Status status = stub->Status(&context, etcdserverpb::StatusRequest(), &response);
  if (!status.ok()) {
    return absl::UnavailableError(
        absl::StrCat("Status: gRPC code ", static_cast<int>(status.error_code()), ": ",
                     status.error_message()));
  }
  return response;
}

milliseconds Left(Clock::time_point deadline) {
  return std::max(milliseconds(1),
                  std::chrono::duration_cast<milliseconds>(deadline - Clock::now()));
}

}  // namespace

absl::StatusOr<std::unique_ptr<EtcdCluster>> EtcdCluster::Start(EtcdClusterOptions options) {
  if (options.members < 1) {
    return absl::InvalidArgumentError(absl::StrCat("members = ", options.members, "; want >= 1"));
  }
  auto credentials = FixtureCredentials(options.tls);
  if (!credentials.ok()) return credentials.status();
  IgnoreSigpipe();
  auto dir = MakeTempDir("etcd-test");
  if (!dir.ok()) return dir.status();
  std::unique_ptr<EtcdCluster> cluster(
      new EtcdCluster(std::move(options), *std::move(dir), *std::move(credentials)));
  absl::Status status;
  for (int attempt = 1; attempt <= kStartAttempts; ++attempt) {
    bool port_taken = false;
    status = cluster->StartOnce(attempt, &port_taken);
    if (status.ok()) return cluster;
    if (!port_taken) break;
  }
  return status;
}

EtcdCluster::EtcdCluster(EtcdClusterOptions options, std::string dir,
                         std::shared_ptr<grpc::ChannelCredentials> credentials)
    : options_(std::move(options)), dir_(std::move(dir)), credentials_(std::move(credentials)) {}

EtcdCluster::~EtcdCluster() {
  KillAll();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

absl::Status EtcdCluster::StartOnce(int attempt, bool* port_taken) {
  *port_taken = false;
  KillAll();
  const int n = options_.members;
  auto ports = PickFreePorts(2 * n);
  if (!ports.ok()) return ports.status();

  members_.clear();
  members_.resize(static_cast<size_t>(n));
  std::vector<std::string> initial_cluster;
  for (int i = 0; i < n; ++i) {
    Member& m = members_[static_cast<size_t>(i)];
    m.name = absl::StrCat("m", i);
    m.client_port = (*ports)[static_cast<size_t>(2 * i)];
    m.peer_port = (*ports)[static_cast<size_t>(2 * i + 1)];
    m.data_dir = absl::StrCat(dir_, "/", m.name);
    m.log_path = absl::StrCat(dir_, "/", m.name, ".log");
    initial_cluster.push_back(absl::StrCat(m.name, "=", Url(m.peer_port)));
    // A previous attempt's data would make etcd join that attempt's cluster.
    std::error_code ec;
    std::filesystem::remove_all(m.data_dir, ec);
  }
  // Unique per cluster (the temporary directory's name is) and per attempt, so
  // that members of different clusters never mistake each other for peers.
  const std::string token =
      absl::StrCat(std::filesystem::path(dir_).filename().string(), "-", attempt);
  for (Member& m : members_) {
    const std::string client_url = options_.tls ? TlsUrl(m.client_port) : Url(m.client_port);
    // clang-format off: flag and value pairs.
    m.args = {options_.binary,
              "--name", m.name,
              "--data-dir", m.data_dir,
              "--listen-client-urls", client_url,
              "--advertise-client-urls", client_url,
              "--listen-peer-urls", Url(m.peer_port),
              "--initial-advertise-peer-urls", Url(m.peer_port),
              "--initial-cluster", absl::StrJoin(initial_cluster, ","),
              "--initial-cluster-state", "new",
              "--initial-cluster-token", token,
              // A new leader within about a second of a crash, not several.
              "--heartbeat-interval", "50",
              "--election-timeout", "500",
              // A restarted member does not depose a healthy leader.
              "--pre-vote=true",
              "--enable-v2=false",
              // capnslog, 3.4's default, warns that it is deprecated.
              "--logger", "zap",
              "--log-outputs", "stderr"};
    // clang-format on
    if (options_.tls) {
      m.args.insert(m.args.end(), {"--cert-file", options_.tls->cert_file,
                                   "--key-file", options_.tls->key_file});
      // etcd 3.4 requires client certificates whenever --trusted-ca-file is
      // set, whatever --client-cert-auth says: pass it only when asked to.
      if (options_.tls->client_cert_auth) {
        m.args.insert(m.args.end(), {"--client-cert-auth=true",
                                     "--trusted-ca-file", options_.tls->ca_file});
      }
    }
    m.args.insert(m.args.end(), options_.extra_args.begin(), options_.extra_args.end());
    grpc::ChannelArguments channel_args;
    channel_args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
    channel_args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
    channel_args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 250);
    m.channel = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", m.client_port),
                                          credentials_, channel_args);
    m.run_log_offset = 0;
  }

  // One after the other: a new member asks the others' peer ports whether it
  // was bootstrapped already, and a peer that listens but does not answer yet
  // (it is doing the same) costs it etcd's 1 s bootstrap timeout, while a
  // refused connection or an answer costs nothing.
  std::vector<int> all;
  absl::Status status;
  for (int i = 0; i < n && status.ok(); ++i) {
    Member& m = members_[static_cast<size_t>(i)];
    status = Spawn(m);
    all.push_back(i);
    if (status.ok() && i + 1 < n) {
      std::optional<int> exited;
      WaitFor(
          [&] {
            exited = ReapIfExited(m);
            return exited.has_value() ||
                   ReadFile(m.log_path).find(kServingPeers, m.run_log_offset) != std::string::npos;
          },
          kServingPeersTimeout, milliseconds(5));
      if (exited) {
        status = absl::UnavailableError(
            absl::StrCat(m.name, " exited (", DescribeWaitStatus(*exited), ")"));
      }
    }
  }
  if (status.ok()) status = WaitServing(all, options_.start_timeout);
  if (status.ok()) return status;

  for (const Member& m : members_) {
    if (ReadFile(m.log_path).find(kAddressInUse, m.run_log_offset) != std::string::npos) {
      *port_taken = true;
    }
  }
  KillAll();
  return absl::Status(status.code(),
                      absl::StrCat("etcd cluster of ", n, " (attempt ", attempt, " of ",
                                   kStartAttempts, "): ", status.message(), "\n",
                                   LogsTail(kLogTailBytes)));
}

absl::Status EtcdCluster::Spawn(Member& member) {
  int fd = open(member.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("open ", member.log_path, ": ", std::strerror(errno)));
  }
  std::string header = absl::StrCat("=== ", absl::StrJoin(member.args, " "), "\n");
  ssize_t ignored = write(fd, header.data(), header.size());
  (void)ignored;
  off_t offset = lseek(fd, 0, SEEK_END);
  member.run_log_offset = offset > 0 ? static_cast<size_t>(offset) : 0;
  absl::StatusOr<pid_t> pid = SpawnChild(member.args, fd, "etcd");
  close(fd);
  if (!pid.ok()) return pid.status();
  member.pid = *pid;
  return absl::OkStatus();
}

void EtcdCluster::Reaped(Member& member, int wait_status) {
  member.pid = -1;
  AppendToFile(member.log_path, absl::StrCat("=== ", member.name, " ended: ",
                                             DescribeWaitStatus(wait_status), "\n"));
}

std::optional<int> EtcdCluster::ReapIfExited(Member& member) {
  if (member.pid <= 0) return std::nullopt;
  std::optional<int> status = WaitForExit(member.pid, milliseconds(0));
  if (status) Reaped(member, *status);
  return status;
}

void EtcdCluster::KillAll() {
  for (Member& m : members_) {
    if (m.pid > 0) Reaped(m, KillAndReap(m.pid));
  }
}

absl::Status EtcdCluster::WaitServing(const std::vector<int>& indexes, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::vector<int> pending = indexes;
  std::string last_error;
  while (true) {
    for (auto it = pending.begin(); it != pending.end();) {
      Member& m = members_[static_cast<size_t>(*it)];
      if (std::optional<int> exited = ReapIfExited(m)) {
        return absl::UnavailableError(
            absl::StrCat(m.name, " exited (", DescribeWaitStatus(*exited), ")"));
      }
      if (m.pid <= 0) return absl::UnavailableError(absl::StrCat(m.name, " is not running"));
      auto status = Status(m.channel, std::min(kProbeTimeout, Left(deadline)));
      if (!status.ok()) {
        last_error = absl::StrCat(m.name, ": ", status.status().message());
        ++it;
        continue;
      }
      m.id = status->header().member_id();
      // A member on its own cannot know a leader while too few others run.
      int running_count = 0;
      for (const Member& other : members_) running_count += other.pid > 0 ? 1 : 0;
      const bool quorum = 2 * running_count > size();
      if (status->leader() == 0 && quorum) {
        last_error = absl::StrCat(m.name, " knows no leader yet");
        ++it;
        continue;
      }
      it = pending.erase(it);
    }
    if (pending.empty()) return absl::OkStatus();
    if (Clock::now() >= deadline) {
      std::vector<std::string> names;
      for (int i : pending) names.push_back(members_[static_cast<size_t>(i)].name);
      return absl::DeadlineExceededError(
          absl::StrCat("not serving with a leader within ", timeout.count(), " ms: ",
                       absl::StrJoin(names, ", "), " (last: ", last_error, ")"));
    }
    std::this_thread::sleep_for(std::min(kPollInterval, Left(deadline)));
  }
}

std::string EtcdCluster::endpoint(int i) const {
  return absl::StrCat("127.0.0.1:", members_.at(static_cast<size_t>(i)).client_port);
}

std::vector<std::string> EtcdCluster::endpoints() const {
  std::vector<std::string> result;
  for (int i = 0; i < size(); ++i) result.push_back(endpoint(i));
  return result;
}

std::string EtcdCluster::EndpointList() const { return absl::StrJoin(endpoints(), ","); }

std::string EtcdCluster::client_url(int i) const {
  const uint16_t port = members_.at(static_cast<size_t>(i)).client_port;
  return options_.tls ? TlsUrl(port) : Url(port);
}

std::vector<std::string> EtcdCluster::client_urls() const {
  std::vector<std::string> result;
  for (int i = 0; i < size(); ++i) result.push_back(client_url(i));
  return result;
}

std::string EtcdCluster::peer_url(int i) const {
  return Url(members_.at(static_cast<size_t>(i)).peer_port);
}

uint64_t EtcdCluster::member_id(int i) const { return members_.at(static_cast<size_t>(i)).id; }

std::string EtcdCluster::data_dir(int i) const {
  return members_.at(static_cast<size_t>(i)).data_dir;
}

std::shared_ptr<grpc::Channel> EtcdCluster::Channel(int i) const {
  return members_.at(static_cast<size_t>(i)).channel;
}

bool EtcdCluster::running(int i) const { return members_.at(static_cast<size_t>(i)).pid > 0; }

void EtcdCluster::Kill(int i) {
  Member& m = members_.at(static_cast<size_t>(i));
  if (m.pid <= 0) return;
  Reaped(m, KillAndReap(m.pid));
}

int EtcdCluster::Terminate(int i, milliseconds deadline) {
  Member& m = members_.at(static_cast<size_t>(i));
  if (m.pid <= 0) return -1;
  kill(m.pid, SIGTERM);
  std::optional<int> status = WaitForExit(m.pid, deadline);
  if (!status) {
    AppendToFile(m.log_path, absl::StrCat("=== no exit within ", deadline.count(),
                                          " ms of SIGTERM; sending SIGKILL\n"));
    Kill(i);
    return -1;
  }
  Reaped(m, *status);
  return ExitCodeOf(*status);
}

absl::Status EtcdCluster::Restart(int i) {
  if (i < 0 || i >= size()) return absl::InvalidArgumentError(absl::StrCat("no member ", i));
  Member& m = members_[static_cast<size_t>(i)];
  if (m.pid > 0) return absl::FailedPreconditionError(absl::StrCat(m.name, " is running"));
  absl::Status status = Spawn(m);
  if (status.ok()) status = WaitServing({i}, options_.start_timeout);
  if (status.ok()) return status;
  Kill(i);
  return absl::Status(status.code(), absl::StrCat("restart of ", m.name, ": ", status.message(),
                                                  "\n", LogsTail(kLogTailBytes)));
}

absl::StatusOr<int> EtcdCluster::LeaderIndex(milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::vector<std::string> answers;
  while (true) {
    answers.clear();
    for (int i = 0; i < size(); ++i) {
      Member& m = members_[static_cast<size_t>(i)];
      if (m.pid <= 0) continue;
      auto status = Status(m.channel, std::min(kProbeTimeout, Left(deadline)));
      if (!status.ok()) {
        answers.push_back(absl::StrCat(m.name, ": ", status.status().message()));
        continue;
      }
      if (m.id == 0) m.id = status->header().member_id();
      if (status->leader() != 0 && status->leader() == status->header().member_id()) return i;
      answers.push_back(absl::StrCat(m.name, ": leader ", status->leader(), " term ",
                                     status->raftterm()));
    }
    if (Clock::now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("no member reported itself as the leader within ", timeout.count(),
                       " ms; last answers: ", absl::StrJoin(answers, "; ")));
    }
    std::this_thread::sleep_for(std::min(milliseconds(20), Left(deadline)));
  }
}

absl::Status EtcdCluster::MoveLeader(int to, milliseconds timeout) {
  if (to < 0 || to >= size()) return absl::InvalidArgumentError(absl::StrCat("no member ", to));
  const auto deadline = Clock::now() + timeout;
  Member& target = members_[static_cast<size_t>(to)];
  if (target.pid <= 0) {
    return absl::FailedPreconditionError(absl::StrCat(target.name, " is not running"));
  }
  absl::StatusOr<int> leader = LeaderIndex(Left(deadline));
  if (!leader.ok()) return leader.status();
  if (*leader == to) return absl::OkStatus();
  if (target.id == 0) {
    auto status = Status(target.channel, Left(deadline));
    if (!status.ok()) return status.status();
    target.id = status->header().member_id();
  }

  auto stub = etcdserverpb::Maintenance::NewStub(members_[static_cast<size_t>(*leader)].channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + Left(deadline));
  etcdserverpb::MoveLeaderRequest request;
  request.set_targetid(target.id);
  etcdserverpb::MoveLeaderResponse response;
  grpc::Status moved = stub->MoveLeader(&context, request, &response);
  if (!moved.ok()) {
    return absl::UnavailableError(absl::StrCat(
        "MoveLeader to ", target.name, " via ", members_[static_cast<size_t>(*leader)].name,
        ": gRPC code ", static_cast<int>(moved.error_code()), ": ", moved.error_message()));
  }
  std::string last;
  while (true) {
    auto status = Status(target.channel, std::min(kProbeTimeout, Left(deadline)));
    if (status.ok() && status->leader() == target.id) return absl::OkStatus();
    last = status.ok() ? absl::StrCat("leader ", status->leader())
                       : std::string(status.status().message());
    if (Clock::now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          target.name, " did not become the leader within ", timeout.count(), " ms (", last, ")"));
    }
    std::this_thread::sleep_for(std::min(milliseconds(20), Left(deadline)));
  }
}

std::string EtcdCluster::Logs() const {
  std::string logs;
  for (const Member& m : members_) {
    absl::StrAppend(&logs, "---- ", m.name, " (", m.log_path, ") ----\n", ReadFile(m.log_path));
  }
  return logs;
}

std::string EtcdCluster::LogsTail(size_t bytes) const {
  std::string logs;
  for (const Member& m : members_) {
    std::string text = ReadFile(m.log_path);
    if (text.size() > bytes) {
      size_t from = text.size() - bytes;
      size_t line = text.find('\n', from);
      text = absl::StrCat("[...]\n", text.substr(line == std::string::npos ? from : line + 1));
    }
    absl::StrAppend(&logs, "---- ", m.name, " (", m.log_path, ") ----\n", text);
  }
  return logs;
}

}  // namespace muster::testing
