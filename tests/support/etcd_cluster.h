// Runs a real etcd cluster (Debian's /usr/bin/etcd, 3.4) for an integration
// test: N members on free 127.0.0.1 ports, data and logs in a fresh temporary
// directory, tuned for fast failover (50 ms heartbeats, 500 ms election
// timeout, pre-vote on).
//
// Example:
//   auto cluster = muster::testing::EtcdCluster::Start();  // 3 members by default
//   ASSERT_TRUE(cluster.ok()) << cluster.status();  // the message carries the logs' tail
//   auto kv = etcdserverpb::KV::NewStub((*cluster)->Channel(0));
//   ...                                     // or pass (*cluster)->EndpointList() to musterd
//   absl::StatusOr<int> leader = (*cluster)->LeaderIndex(std::chrono::seconds(5));
//   ASSERT_TRUE(leader.ok()) << leader.status();
//   (*cluster)->Kill(*leader);
//   ...                                     // the other two elect a new leader
//   ASSERT_TRUE((*cluster)->Restart(*leader).ok());
//
// Member i is named "m<i>"; its client address is endpoint(i) and stays the
// same across Restart(). Logs of every member go to files in the temporary
// directory; Logs() returns them all (print them when a test fails).
//
// With options.tls set, the members serve clients over TLS only (https://
// client URLs, see client_url()); Channel() and the fixture's own probes then
// speak TLS too. Peers talk plain http either way.
//
// An EtcdCluster is used from one test thread; Logs() may be called from any.
// The members die with the thread that started them (PR_SET_PDEATHSIG), so a
// crashed or killed test never leaves an etcd behind: call Start() and
// Restart() from the test's own thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/channel.h>
#include <grpcpp/security/credentials.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace muster::testing {

struct EtcdClusterOptions {
  int members = 3;
  std::string binary = "/usr/bin/etcd";
  // Flags added to every member's command line, after the fixture's own (a
  // later flag wins in etcd), e.g. {"--auto-compaction-retention=1"}. Keep
  // --logger zap: Start() reads the members' logs to pace their start.
  std::vector<std::string> extra_args;
  // How long Start() and Restart() wait for the members to serve.
  std::chrono::milliseconds start_timeout = std::chrono::seconds(20);

  // TLS on the client port (peers stay plain http). PEM files, all required.
  struct Tls {
    // The CA the fixture's own channels trust, and with client_cert_auth
    // etcd's --trusted-ca-file. (Not passed to etcd otherwise: etcd 3.4 turns
    // client certificate authentication on whenever --trusted-ca-file is set.)
    std::string ca_file;
    // The members' certificate (--cert-file, --key-file); it must be valid for
    // 127.0.0.1 (subjectAltName IP:127.0.0.1). With client_cert_auth, etcd's
    // gRPC gateway presents it as a client certificate to etcd itself, so give
    // it extendedKeyUsage clientAuth as well as serverAuth.
    std::string cert_file;
    std::string key_file;
    // --client-cert-auth: clients must present a certificate signed by ca_file.
    bool client_cert_auth = false;
    // With client_cert_auth: the certificate the fixture's own channels
    // present; empty: cert_file and key_file.
    std::string client_cert_file;
    std::string client_key_file;
  };
  // Unset: plaintext http:// client URLs.
  std::optional<Tls> tls;
};

class EtcdCluster {
 public:
  // Creates the temporary directory, picks two free loopback ports per member
  // (client and peer), spawns the members one after the other (each once the
  // previous one serves its peers: about 50 ms each, and it spares them etcd's
  // 1 s bootstrap probe timeout per peer) with --initial-cluster-state new and
  // a cluster token of its own, and waits until every member answers
  // Maintenance.Status and reports a leader. When a member could not bind its
  // port (another process took it meanwhile), starts over with new ports, up to
  // three times. InvalidArgument for members < 1 or options.tls without all
  // of its files (or one that cannot be read); Unavailable when a member
  // exited; DeadlineExceeded after options.start_timeout. The message of an
  // error carries the tail of every member's log.
  static absl::StatusOr<std::unique_ptr<EtcdCluster>> Start(EtcdClusterOptions options = {});

  // Kills every member (SIGKILL) and removes the temporary directory.
  ~EtcdCluster();
  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;

  int size() const { return static_cast<int>(members_.size()); }

  // "127.0.0.1:PORT": the client address of member i (gRPC; TLS when
  // options.tls is set).
  std::string endpoint(int i) const;
  // "https://127.0.0.1:PORT" when options.tls is set, else
  // "http://127.0.0.1:PORT": the client URL of member i.
  std::string client_url(int i) const;
  // Client URLs of all members, in member order.
  std::vector<std::string> client_urls() const;
  // Whether the members serve clients over TLS.
  bool tls() const { return options_.tls.has_value(); }
  // Client addresses of all members, in member order.
  std::vector<std::string> endpoints() const;
  // The same, comma-joined: for --etcd-endpoints.
  std::string EndpointList() const;
  // "http://127.0.0.1:PORT": the peer address of member i.
  std::string peer_url(int i) const;
  // Member i's Raft id (as in ResponseHeader.member_id and
  // StatusResponse.leader), learned at Start().
  uint64_t member_id(int i) const;
  // The data directory of member i.
  std::string data_dir(int i) const;

  // A channel to member i (TLS, trusting options.tls->ca_file, when TLS is
  // on) that reconnects quickly (backoff 50 ms to 250 ms,
  // rather than gRPC's default of up to two minutes), so that a client notices
  // a restarted member at once. One channel per member, kept across restarts.
  std::shared_ptr<grpc::Channel> Channel(int i) const;

  // SIGKILL and reap member i; nothing when it is not running.
  void Kill(int i);

  // SIGTERM and wait up to `deadline` for member i to exit. Returns the exit
  // code, or 128 + signal when a signal ended it (etcd 3.4 re-raises SIGTERM
  // after its clean shutdown, so expect 143), or -1 when it did not exit in
  // time (it is SIGKILLed then) or was not running.
  int Terminate(int i, std::chrono::milliseconds deadline = std::chrono::seconds(10));

  // Starts member i again on its data directory and ports, after Kill() or
  // Terminate(), and waits until it answers Maintenance.Status and knows the
  // leader (so that a linearizable read through it works) -- or, when fewer
  // than a majority of the members run with it, just until it answers (no
  // leader can exist yet: restart the next one). FailedPrecondition when it
  // runs already; Unavailable when it exited; DeadlineExceeded after
  // options.start_timeout (it is killed then). The error carries the logs' tail.
  absl::Status Restart(int i);

  bool running(int i) const;

  // The index of the member that is the Raft leader, by asking the running
  // members for Maintenance.Status until one of them reports itself as the
  // leader. DeadlineExceeded when none did within `timeout` (no quorum, say).
  absl::StatusOr<int> LeaderIndex(std::chrono::milliseconds timeout);

  // Hands leadership to member `to` (Maintenance.MoveLeader on the current
  // leader) and waits until `to` reports itself as the leader. OK at once when
  // it already is.
  absl::Status MoveLeader(int to, std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // Every member's output so far (all of its runs, each headed by its command
  // line and closed by how it ended), each member headed by its name.
  std::string Logs() const;

  // The temporary directory that holds the members' data directories and logs.
  const std::string& dir() const { return dir_; }

 private:
  struct Member {
    std::string name;  // "m<i>"
    uint16_t client_port = 0;
    uint16_t peer_port = 0;
    std::string data_dir;
    std::string log_path;
    std::vector<std::string> args;  // the whole command line, argv[0] first
    pid_t pid = -1;
    uint64_t id = 0;            // Raft member id, 0 until learned
    size_t run_log_offset = 0;  // where the current run's output starts in the log
    std::shared_ptr<grpc::Channel> channel;
  };

  EtcdCluster(EtcdClusterOptions options, std::string dir,
              std::shared_ptr<grpc::ChannelCredentials> credentials);

  // One attempt of Start() on fresh ports and data directories; *port_taken
  // tells whether a member failed because its port was in use.
  absl::Status StartOnce(int attempt, bool* port_taken);
  absl::Status Spawn(Member& member);
  // Notes in the member's log how it ended and forgets its pid.
  void Reaped(Member& member, int wait_status);
  // Reaps the member when it has exited; its waitpid() status then.
  std::optional<int> ReapIfExited(Member& member);
  void KillAll();
  // Waits until each of `indexes` answers Status and, when a majority of the
  // members runs, knows a leader; learns their member ids.
  absl::Status WaitServing(const std::vector<int>& indexes, std::chrono::milliseconds timeout);
  // The last `bytes` of each member's log, each headed by its name.
  std::string LogsTail(size_t bytes) const;

  // Constant after Start().
  const EtcdClusterOptions options_;
  const std::string dir_;
  // For the fixture's own channels: insecure, or TLS per options_.tls.
  const std::shared_ptr<grpc::ChannelCredentials> credentials_;

  // Touched by the owning test thread only; Logs() reads just the constant
  // names and log paths.
  std::vector<Member> members_;
};

}  // namespace muster::testing
