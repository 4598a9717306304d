#include "etcd/client.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>

#include "core/strings.h"

namespace muster::etcd {

// One LeaseKeepAlive stream. Renewals write a request and wait for the
// answer carrying their lease id; the reader thread hands answers out.
struct Client::KeepAliveStream {
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReaderWriter<etcdserverpb::LeaseKeepAliveRequest,
                                           etcdserverpb::LeaseKeepAliveResponse>>
      stream;

  Mutex write_mu;  // serialises Write (gRPC allows one writer at a time)

  Mutex mu;
  CondVar answered;
  // Lease id -> TTL of the latest answer for it, and how many answers arrived
  // for it so far (a waiter takes the first answer after its request).
  struct Answer {
    int64_t ttl = 0;
    uint64_t count = 0;
  };
  std::map<int64_t, Answer> answers ABSL_GUARDED_BY(mu);
  std::map<int64_t, int> waiting ABSL_GUARDED_BY(mu);  // lease id -> waiters
  bool broken ABSL_GUARDED_BY(mu) = false;
  absl::Status broken_status ABSL_GUARDED_BY(mu);
};

std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

absl::Status FromGrpc(const grpc::Status& status, std::string_view what) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      StrCat("etcd ", what, ": ", status.error_message()));
}

namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(StrCat("cannot read the ", what, " file ", path));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Whether a failure means "try another member": the member is down or
// unreachable, or cut off from the leader.
bool IsUnavailable(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE;
}

}  // namespace

Client::Client(ClientOptions options) : options_(std::move(options)) {}

Client::~Client() {
  std::thread reader;
  {
    MutexLock lock(keepalive_mu_);
    if (keepalive_ != nullptr) keepalive_->context.TryCancel();
    reader = std::move(keepalive_reader_);
  }
  if (reader.joinable()) reader.join();
}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(ClientOptions options) {
  if (options.endpoints.empty()) return absl::InvalidArgumentError("no etcd endpoints given");
  if (options.max_retries < 0) return absl::InvalidArgumentError("max_retries must be >= 0");
  if (options.password.size() > 0 && options.username.empty()) {
    return absl::InvalidArgumentError("an etcd password needs a username");
  }
  std::unique_ptr<Client> client(new Client(std::move(options)));
  if (absl::Status status = client->Init(); !status.ok()) return status;
  return client;
}

absl::Status Client::Init() {
  bool tls = options_.tls || !options_.ca_file.empty() || !options_.cert_file.empty() ||
             !options_.key_file.empty();
  std::vector<std::string> addresses;
  for (const std::string& endpoint : options_.endpoints) {
    std::string_view address = endpoint;
    if (address.starts_with("https://")) {
      tls = true;
      address.remove_prefix(8);
    } else if (address.starts_with("http://")) {
      address.remove_prefix(7);
    }
    while (address.ends_with('/')) address.remove_suffix(1);
    if (address.empty() || address.find(':') == std::string_view::npos ||
        address.find('/') != std::string_view::npos) {
      return absl::InvalidArgumentError(
          StrCat("etcd endpoint '", endpoint, "' is not host:port or a URL http(s)://host:port"));
    }
    addresses.emplace_back(address);
  }
  if (options_.cert_file.empty() != options_.key_file.empty()) {
    return absl::InvalidArgumentError("an etcd client certificate needs both cert_file and key_file");
  }

  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (tls) {
    grpc::SslCredentialsOptions ssl;
    if (!options_.ca_file.empty()) {
      absl::StatusOr<std::string> ca = ReadFile(options_.ca_file, "CA");
      if (!ca.ok()) return ca.status();
      ssl.pem_root_certs = *std::move(ca);
    }
    if (!options_.cert_file.empty()) {
      absl::StatusOr<std::string> cert = ReadFile(options_.cert_file, "certificate");
      if (!cert.ok()) return cert.status();
      absl::StatusOr<std::string> key = ReadFile(options_.key_file, "key");
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *std::move(cert);
      ssl.pem_private_key = *std::move(key);
    }
    credentials = grpc::SslCredentials(ssl);
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }

  grpc::ChannelArguments args;
  // Reconnect to a restarted member quickly rather than after gRPC's default
  // backoff of up to two minutes.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  args.SetMaxReceiveMessageSize(-1);  // a large Range answer is etcd's to limit
  if (options_.keepalive_interval.count() > 0) {
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(options_.keepalive_interval.count()));
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                static_cast<int>(options_.keepalive_timeout.count()));
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  }

  endpoints_.reserve(addresses.size());
  for (std::string& address : addresses) {
    Endpoint endpoint;
    endpoint.address = std::move(address);
    endpoint.channel = grpc::CreateCustomChannel(endpoint.address, credentials, args);
    endpoint.kv = etcdserverpb::KV::NewStub(endpoint.channel);
    endpoint.lease = etcdserverpb::Lease::NewStub(endpoint.channel);
    endpoint.watch = etcdserverpb::Watch::NewStub(endpoint.channel);
    endpoint.maintenance = etcdserverpb::Maintenance::NewStub(endpoint.channel);
    endpoint.auth = etcdserverpb::Auth::NewStub(endpoint.channel);
    endpoints_.push_back(std::move(endpoint));
  }

  // Find a member that answers, each tried in turn until dial_timeout.
  const Deadline deadline = DeadlineIn(options_.dial_timeout);
  absl::Status last = absl::UnavailableError("no etcd member answered");
  for (size_t attempt = 0;; ++attempt) {
    const size_t index = attempt % endpoints_.size();
    Endpoint& endpoint = endpoints_[index];
    const auto per_try = std::min<Deadline>(
        deadline, DeadlineIn(std::max(options_.dial_timeout / static_cast<int>(endpoints_.size()),
                                      std::chrono::milliseconds(200))));
    absl::Status status;
    if (!options_.username.empty()) {
      status = Authenticate(endpoint, per_try);
    } else {
      grpc::ClientContext context;
      context.set_deadline(per_try);
      context.set_wait_for_ready(true);
      etcdserverpb::StatusResponse response;
      status = FromGrpc(endpoint.maintenance->Status(&context, {}, &response), "Status");
    }
    if (status.ok()) {
      current_.store(index);
      return absl::OkStatus();
    }
    const auto code = status.code();
    if (code != absl::StatusCode::kUnavailable && code != absl::StatusCode::kDeadlineExceeded) {
      return status;  // bad credentials or the like: another member will say the same
    }
    last = status;
    if (std::chrono::system_clock::now() >= deadline) break;
  }
  // The probes waited for a connection, which hides why there is none (a
  // refused connection, a failed TLS handshake): one call that does not wait
  // says it.
  {
    grpc::ClientContext context;
    context.set_deadline(DeadlineIn(std::chrono::milliseconds(500)));
    etcdserverpb::StatusResponse response;
    grpc::Status reason = endpoints_.back().maintenance->Status(&context, {}, &response);
    if (!reason.ok() && reason.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
      last = FromGrpc(reason, "Status");
    }
  }
  return absl::UnavailableError(StrCat("no etcd member answered within ",
                                       options_.dial_timeout.count(), " ms (last: ",
                                       last.message(), ")"));
}

absl::Status Client::Authenticate(Endpoint& endpoint, Deadline deadline) {
  grpc::ClientContext context;
  context.set_deadline(deadline);
  context.set_wait_for_ready(true);
  etcdserverpb::AuthenticateRequest request;
  request.set_name(options_.username);
  request.set_password(options_.password);
  etcdserverpb::AuthenticateResponse response;
  grpc::Status status = endpoint.auth->Authenticate(&context, request, &response);
  if (!status.ok()) return FromGrpc(status, "Authenticate");
  MutexLock lock(token_mu_);
  token_ = response.token();
  return absl::OkStatus();
}

bool Client::IsTokenRejected(const grpc::Status& status) {
  // etcd 3.4: "etcdserver: invalid auth token" (UNAUTHENTICATED) and, for a
  // token from before a restart, "auth: revision in header is old".
  return status.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
         (status.error_code() == grpc::StatusCode::OUT_OF_RANGE &&
          status.error_message().find("auth") != std::string::npos);
}

void Client::PrepareContext(grpc::ClientContext& context, Deadline deadline) {
  context.set_deadline(deadline);
  if (!options_.username.empty()) {
    MutexLock lock(token_mu_);
    if (!token_.empty()) context.AddMetadata("token", token_);
  }
}

void Client::Rotate(size_t failed) {
  size_t expected = failed;
  current_.compare_exchange_strong(expected, (failed + 1) % endpoints_.size());
}

Deadline Client::AttemptDeadline(Deadline deadline, int attempt) const {
  const auto now = std::chrono::system_clock::now();
  const int attempts_left = std::max(options_.max_retries - attempt, 0) + 1;
  if (attempts_left == 1 || deadline <= now) return deadline;
  const auto share = std::max<std::chrono::system_clock::duration>((deadline - now) / attempts_left,
                                                                   kMinAttemptTime);
  return std::min(deadline, now + share);
}

template <typename Response, typename Call>
absl::StatusOr<Response> Client::Invoke(std::string_view what, Deadline deadline, Call call) {
  bool reauthenticated = false;
  grpc::Status last;
  for (int attempt = 0;; ++attempt) {
    const size_t index = current_.load();
    Endpoint& endpoint = endpoints_[index];
    grpc::ClientContext context;
    const Deadline attempt_deadline = AttemptDeadline(deadline, attempt);
    PrepareContext(context, attempt_deadline);
    Response response;
    grpc::Status status = call(endpoint, context, response);
    if (status.ok()) return response;
    last = status;
    if (!options_.username.empty() && !reauthenticated && IsTokenRejected(status)) {
      reauthenticated = true;
      if (Authenticate(endpoint, deadline).ok()) {
        --attempt;  // a token refresh is not a retry
        continue;
      }
    }
    // A member that lost its leader holds a write until its own request
    // timeout (about 6 s); the attempt's share of the deadline ends the wait
    // sooner and the next attempt goes to another member.
    const bool attempt_timed_out = status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED &&
                                   attempt_deadline < deadline;
    if (!IsUnavailable(status) && !attempt_timed_out) break;
    Rotate(index);
    if (attempt >= options_.max_retries) break;
    const auto now = std::chrono::system_clock::now();
    if (now >= deadline) break;
    if (!attempt_timed_out) {
      if (now + options_.retry_interval >= deadline) break;
      std::this_thread::sleep_for(options_.retry_interval);
    }
  }
  return FromGrpc(last, what);
}

absl::StatusOr<etcdserverpb::RangeResponse> Client::Range(const etcdserverpb::RangeRequest& request,
                                                          Deadline deadline) {
  return Invoke<etcdserverpb::RangeResponse>(
      "Range", deadline, [&](Endpoint& e, grpc::ClientContext& c, etcdserverpb::RangeResponse& r) {
        return e.kv->Range(&c, request, &r);
      });
}

absl::StatusOr<etcdserverpb::PutResponse> Client::Put(const etcdserverpb::PutRequest& request,
                                                      Deadline deadline) {
  return Invoke<etcdserverpb::PutResponse>(
      "Put", deadline, [&](Endpoint& e, grpc::ClientContext& c, etcdserverpb::PutResponse& r) {
        return e.kv->Put(&c, request, &r);
      });
}

absl::StatusOr<etcdserverpb::DeleteRangeResponse> Client::DeleteRange(
    const etcdserverpb::DeleteRangeRequest& request, Deadline deadline) {
  return Invoke<etcdserverpb::DeleteRangeResponse>(
      "DeleteRange", deadline,
      [&](Endpoint& e, grpc::ClientContext& c, etcdserverpb::DeleteRangeResponse& r) {
        return e.kv->DeleteRange(&c, request, &r);
      });
}

absl::StatusOr<etcdserverpb::TxnResponse> Client::Txn(const etcdserverpb::TxnRequest& request,
                                                      Deadline deadline) {
  return Invoke<etcdserverpb::TxnResponse>(
      "Txn", deadline, [&](Endpoint& e, grpc::ClientContext& c, etcdserverpb::TxnResponse& r) {
        return e.kv->Txn(&c, request, &r);
      });
}

absl::StatusOr<etcdserverpb::LeaseGrantResponse> Client::LeaseGrant(int64_t ttl_seconds,
                                                                    Deadline deadline) {
  etcdserverpb::LeaseGrantRequest request;
  request.set_ttl(ttl_seconds);
  return Invoke<etcdserverpb::LeaseGrantResponse>(
      "LeaseGrant", deadline,
      [&](Endpoint& e, grpc::ClientContext& c, etcdserverpb::LeaseGrantResponse& r) {
        return e.lease->LeaseGrant(&c, request, &r);
      });
}

absl::Status Client::LeaseRevoke(int64_t lease, Deadline deadline) {
  etcdserverpb::LeaseRevokeRequest request;
  request.set_id(lease);
  return Invoke<etcdserverpb::LeaseRevokeResponse>(
             "LeaseRevoke", deadline,
             [&](Endpoint& e, grpc::ClientContext& c, etcdserverpb::LeaseRevokeResponse& r) {
               return e.lease->LeaseRevoke(&c, request, &r);
             })
      .status();
}

absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> Client::LeaseTimeToLive(int64_t lease,
                                                                              Deadline deadline) {
  etcdserverpb::LeaseTimeToLiveRequest request;
  request.set_id(lease);
  return Invoke<etcdserverpb::LeaseTimeToLiveResponse>(
      "LeaseTimeToLive", deadline,
      [&](Endpoint& e, grpc::ClientContext& c, etcdserverpb::LeaseTimeToLiveResponse& r) {
        return e.lease->LeaseTimeToLive(&c, request, &r);
      });
}

absl::StatusOr<etcdserverpb::StatusResponse> Client::Status(Deadline deadline) {
  return Invoke<etcdserverpb::StatusResponse>(
      "Status", deadline,
      [&](Endpoint& e, grpc::ClientContext& c, etcdserverpb::StatusResponse& r) {
        return e.maintenance->Status(&c, {}, &r);
      });
}

Client::StreamTarget Client::CurrentStream(grpc::ClientContext& context) {
  const size_t index = current_.load();
  if (!options_.username.empty()) {
    MutexLock lock(token_mu_);
    if (!token_.empty()) context.AddMetadata("token", token_);
  }
  context.AddMetadata("hasleader", "true");
  return StreamTarget{index, endpoints_[index].watch.get()};
}

void Client::StreamFailed(size_t endpoint, const grpc::Status& status) {
  if (status.error_code() == grpc::StatusCode::CANCELLED) return;
  if (!options_.username.empty() && IsTokenRejected(status)) {
    (void)Authenticate(endpoints_[endpoint], DeadlineIn(options_.dial_timeout));
    return;
  }
  Rotate(endpoint);
}

absl::StatusOr<std::shared_ptr<Client::KeepAliveStream>> Client::KeepAliveStreamFor(
    Deadline deadline) {
  MutexLock lock(keepalive_mu_);
  if (keepalive_ != nullptr) {
    MutexLock stream_lock(keepalive_->mu);
    if (!keepalive_->broken) return keepalive_;
  }
  // The previous stream broke: its reader has ended or is ending.
  if (keepalive_reader_.joinable()) {
    std::thread old = std::move(keepalive_reader_);
    lock.Unlock();
    old.join();
    lock.Lock();
    if (keepalive_reader_.joinable()) {  // another caller opened one meanwhile
      MutexLock stream_lock(keepalive_->mu);
      if (!keepalive_->broken) return keepalive_;
      return absl::UnavailableError("etcd LeaseKeepAlive: the stream broke");
    }
  }
  auto stream = std::make_shared<KeepAliveStream>();
  const size_t index = current_.load();
  if (!options_.username.empty()) {
    MutexLock token_lock(token_mu_);
    if (!token_.empty()) stream->context.AddMetadata("token", token_);
  }
  stream->context.AddMetadata("hasleader", "true");
  (void)deadline;  // a stream lives on; each renewal waits up to its own deadline
  stream->stream = endpoints_[index].lease->LeaseKeepAlive(&stream->context);
  keepalive_ = stream;
  keepalive_reader_ = std::thread([this, stream, index] {
    KeepAliveReader(stream);
    grpc::Status status = stream->stream->Finish();
    {
      MutexLock stream_lock(stream->mu);
      stream->broken_status = FromGrpc(status, "LeaseKeepAlive");
      if (stream->broken_status.ok()) {
        stream->broken_status = absl::UnavailableError("etcd LeaseKeepAlive: the stream ended");
      }
    }
    StreamFailed(index, status);
    stream->answered.NotifyAll();
  });
  return stream;
}

void Client::KeepAliveReader(std::shared_ptr<KeepAliveStream> stream) {
  etcdserverpb::LeaseKeepAliveResponse response;
  while (stream->stream->Read(&response)) {
    MutexLock lock(stream->mu);
    // An answer nobody waits for any more (its renewal timed out) is dropped.
    if (!stream->waiting.contains(response.id())) continue;
    KeepAliveStream::Answer& answer = stream->answers[response.id()];
    answer.ttl = response.ttl();
    ++answer.count;
    stream->answered.NotifyAll();
  }
  MutexLock lock(stream->mu);
  stream->broken = true;
}

absl::StatusOr<int64_t> Client::KeepAliveOnce(int64_t lease, Deadline deadline) {
  absl::Status last;
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<std::shared_ptr<KeepAliveStream>> opened = KeepAliveStreamFor(deadline);
    if (opened.ok()) {
      KeepAliveStream& stream = **opened;
      uint64_t seen;
      {
        MutexLock lock(stream.mu);
        seen = stream.answers[lease].count;
        ++stream.waiting[lease];
      }
      etcdserverpb::LeaseKeepAliveRequest request;
      request.set_id(lease);
      bool written;
      {
        MutexLock write_lock(stream.write_mu);
        written = stream.stream->Write(request);
      }
      const Deadline attempt_deadline = AttemptDeadline(deadline, attempt);
      MutexLock lock(stream.mu);
      if (written) {
        while (stream.answers[lease].count <= seen && !stream.broken &&
               stream.answered.WaitUntil(stream.mu, attempt_deadline)) {
        }
      }
      const KeepAliveStream::Answer answer = stream.answers[lease];
      if (--stream.waiting[lease] == 0) {
        stream.waiting.erase(lease);
        stream.answers.erase(lease);
      }
      if (answer.count > seen) {
        if (answer.ttl <= 0) {
          return absl::NotFoundError(StrCat("etcd lease ", lease, " has expired or was revoked"));
        }
        return answer.ttl;
      }
      if (!stream.broken && written) {
        last = absl::DeadlineExceededError(
            StrCat("etcd LeaseKeepAlive: no answer for lease ", lease, " before the deadline"));
      } else {
        last = stream.broken_status.ok()
                   ? absl::UnavailableError("etcd LeaseKeepAlive: the stream broke")
                   : stream.broken_status;
      }
      if (!stream.broken) {
        // No answer in time (the member may have lost its leader) or the
        // write failed: give up on this stream, so that the next attempt
        // opens one, on the next member.
        lock.Unlock();
        stream.context.TryCancel();
      }
    } else {
      last = opened.status();
    }
    if (attempt >= options_.max_retries) break;
    if (last.code() == absl::StatusCode::kDeadlineExceeded) {
      if (std::chrono::system_clock::now() >= deadline) break;
      continue;
    }
    if (std::chrono::system_clock::now() + options_.retry_interval >= deadline) break;
    std::this_thread::sleep_for(options_.retry_interval);
  }
  return last;
}

}  // namespace muster::etcd
