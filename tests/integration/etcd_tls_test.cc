// TLS between Muster and a real etcd (EtcdCluster with https:// client URLs):
// the SDK's EtcdRegistry with an https:// endpoint or tls = true, a CA that did
// not sign etcd's certificate, etcd's --client-cert-auth with and without a
// client certificate, and musterd's cluster mode over TLS (--etcd-ca,
// --etcd-cert, --etcd-key).
//
// The certificates (a CA, a certificate for 127.0.0.1 and a client
// certificate it signed, and a second CA with a client certificate of its own)
// are made at run time with the openssl command line, in a temporary directory.
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/wire/http_client.h"
#include "muster/registry.h"
#include "rpc.grpc.pb.h"
#include "support/api_helpers.h"
#include "support/etcd_cluster.h"
#include "support/musterd_process.h"
#include "support/run_command.h"
#include "support/status_matchers.h"

namespace muster::testing {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using ::testing::ElementsAre;

constexpr char kOpenssl[] = "/usr/bin/openssl";
constexpr milliseconds kWait{10000};
// How long a registry that cannot get through may try.
constexpr milliseconds kDialTimeout{2000};
// What a failing NewEtcdRegistry may take beyond its dial timeout.
constexpr milliseconds kDialSlack{2000};

// ---------------------------------------------------------------------------
// Certificates, made with the openssl command line.

struct Pki {
  std::string dir;
  std::string ca;  // the CA that signed everything below but the "other_" files
  std::string server_cert;  // CN and subjectAltName 127.0.0.1 (and DNS:localhost)
  std::string server_key;
  std::string client_cert;
  std::string client_key;
  std::string other_ca;           // a CA that signed neither of the above
  std::string other_client_cert;  // a client certificate other_ca signed
  std::string other_client_key;
};

absl::Status WriteTextFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

absl::Status Openssl(std::vector<std::string> args) {
  args.insert(args.begin(), kOpenssl);
  CommandResult result = RunCommand(args, std::nullopt, std::chrono::seconds(30));
  if (result.exit_code == 0) return absl::OkStatus();
  std::ostringstream message;
  message << absl::StrJoin(args, " ") << ": " << result;
  return absl::InternalError(message.str());
}

// A self-signed CA: DIR/NAME.crt and DIR/NAME.key.
absl::Status MakeCa(const std::string& dir, const std::string& name, const std::string& cn) {
  const std::string base = absl::StrCat(dir, "/", name);
  absl::Status written = WriteTextFile(base + ".cnf", absl::StrCat(
      "[req]\n"
      "distinguished_name = dn\n"
      "prompt = no\n"
      "x509_extensions = ext\n"
      "[dn]\n"
      "CN = ", cn, "\n"
      "[ext]\n"
      "basicConstraints = critical,CA:TRUE\n"
      "keyUsage = critical,keyCertSign,cRLSign\n"
      "subjectKeyIdentifier = hash\n"));
  if (!written.ok()) return written;
  return Openssl({"req", "-x509", "-config", base + ".cnf", "-newkey", "ec", "-pkeyopt",
                  "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", base + ".key", "-out",
                  base + ".crt", "-days", "2"});
}

// A certificate the CA DIR/CA.{crt,key} signed, with the X.509v3 extensions
// `extensions` (lines of an openssl config section): DIR/NAME.crt and .key.
absl::Status MakeLeaf(const std::string& dir, const std::string& name, const std::string& cn,
                      const std::string& ca, int serial, const std::string& extensions) {
  const std::string base = absl::StrCat(dir, "/", name);
  const std::string ca_base = absl::StrCat(dir, "/", ca);
  absl::Status written = WriteTextFile(base + ".cnf", absl::StrCat(
      "[req]\n"
      "distinguished_name = dn\n"
      "prompt = no\n"
      "[dn]\n"
      "CN = ", cn, "\n"
      "[ext]\n"
      "basicConstraints = critical,CA:FALSE\n"
      "keyUsage = critical,digitalSignature\n"
      "authorityKeyIdentifier = keyid\n",
      extensions));
  if (!written.ok()) return written;
  absl::Status status = Openssl({"req", "-new", "-config", base + ".cnf", "-newkey", "ec",
                                 "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                                 base + ".key", "-out", base + ".csr"});
  if (!status.ok()) return status;
  return Openssl({"x509", "-req", "-in", base + ".csr", "-CA", ca_base + ".crt", "-CAkey",
                  ca_base + ".key", "-set_serial", std::to_string(serial), "-days", "2",
                  "-extfile", base + ".cnf", "-extensions", "ext", "-out", base + ".crt"});
}

absl::StatusOr<Pki> MakePki() {
  auto dir = MakeTempDir("etcd-tls-pki");
  if (!dir.ok()) return dir.status();
  Pki pki;
  pki.dir = *dir;
  auto path = [&](const char* file) { return absl::StrCat(pki.dir, "/", file); };
  pki.ca = path("ca.crt");
  pki.server_cert = path("server.crt");
  pki.server_key = path("server.key");
  pki.client_cert = path("client.crt");
  pki.client_key = path("client.key");
  pki.other_ca = path("other-ca.crt");
  pki.other_client_cert = path("other-client.crt");
  pki.other_client_key = path("other-client.key");
  // clientAuth too: with --client-cert-auth, etcd's gRPC gateway presents the
  // server's certificate to etcd itself.
  const std::string server_extensions =
      "extendedKeyUsage = serverAuth,clientAuth\n"
      "subjectAltName = IP:127.0.0.1,DNS:localhost\n";
  const std::string client_extensions = "extendedKeyUsage = clientAuth\n";
  absl::Status status = MakeCa(pki.dir, "ca", "muster test CA");
  if (status.ok()) status = MakeLeaf(pki.dir, "server", "127.0.0.1", "ca", 2, server_extensions);
  if (status.ok()) status = MakeLeaf(pki.dir, "client", "muster-test-client", "ca", 3,
                                     client_extensions);
  if (status.ok()) status = MakeCa(pki.dir, "other-ca", "muster other test CA");
  if (status.ok()) status = MakeLeaf(pki.dir, "other-client", "muster-test-client", "other-ca", 2,
                                     client_extensions);
  if (!status.ok()) {
    std::error_code ec;
    std::filesystem::remove_all(pki.dir, ec);
    return status;
  }
  return pki;
}

// ---------------------------------------------------------------------------
// Subscription updates, collected for the test thread.

class Updates {
 public:
  WatchCallback Callback() {
    return [this](const WatchUpdate& update) {
      std::lock_guard lock(mu_);
      updates_.push_back(update);
      changed_.notify_all();
    };
  }

  // Waits until `predicate` holds for the updates so far; false after `timeout`.
  bool WaitFor(const std::function<bool(const std::vector<WatchUpdate>&)>& predicate,
               milliseconds timeout) {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, timeout, [&] { return predicate(updates_); });
  }

  std::vector<WatchUpdate> all() {
    std::lock_guard lock(mu_);
    return updates_;
  }

  // Whether some update brought a change of `type` to instance `id`.
  static bool HasChange(const std::vector<WatchUpdate>& updates, const std::string& id,
                        ChangeType type) {
    for (const WatchUpdate& update : updates) {
      for (const Change& change : update.changes) {
        if (change.instance.id == id && change.type == type) return true;
      }
    }
    return false;
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<WatchUpdate> updates_;
};

Instance TestInstance(const std::string& id) {
  Instance instance;
  instance.service = "tls-svc";
  instance.id = id;
  instance.address = "10.0.0.7:80";
  return instance;
}

ServiceQuery TlsQuery() {
  ServiceQuery query;
  query.service = "tls-svc";
  return query;
}

CallOptions Call() {
  CallOptions call;
  call.timeout = std::chrono::seconds(5);
  return call;
}

// Subscribe, Register, List and Deregister through `registry`, each bounded.
void ExerciseRegistry(Registry& registry, const std::string& id) {
  Updates updates;
  auto subscription = registry.Subscribe(TlsQuery(), updates.Callback());
  ASSERT_THAT(subscription, IsOk());
  ASSERT_TRUE(updates.WaitFor(
      [](const std::vector<WatchUpdate>& u) { return !u.empty(); }, kWait))
      << "no first update";
  const WatchUpdate first = updates.all().front();
  ASSERT_THAT(first.status, IsOk());
  EXPECT_TRUE(first.snapshot);
  EXPECT_TRUE(first.instances.empty());

  auto stored = registry.Register(TestInstance(id), Call());
  ASSERT_THAT(stored, IsOk());
  EXPECT_GT(stored->modify_revision, 0u);

  auto list = registry.ListServices(TlsQuery(), Call());
  ASSERT_THAT(list, IsOk());
  ASSERT_EQ(list->instances.size(), 1u);
  EXPECT_EQ(list->instances[0].id, id);
  EXPECT_EQ(list->instances[0].address, "10.0.0.7:80");

  EXPECT_TRUE(updates.WaitFor(
      [&](const std::vector<WatchUpdate>& u) {
        return Updates::HasChange(u, id, ChangeType::kRegistered);
      },
      kWait))
      << "the subscription did not deliver the registration";

  const InstanceKey key{std::string(kDefaultNamespace), "tls-svc", id};
  ASSERT_THAT(registry.Deregister(key, Call()), IsOk());
  EXPECT_TRUE(updates.WaitFor(
      [&](const std::vector<WatchUpdate>& u) {
        return Updates::HasChange(u, id, ChangeType::kDeregistered);
      },
      kWait))
      << "the subscription did not deliver the deregistration";
  registry.Unsubscribe(*subscription);
}

// ---------------------------------------------------------------------------

class EtcdTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (access(kOpenssl, X_OK) != 0) return;  // SetUp skips
    auto pki = MakePki();
    if (pki.ok()) {
      pki_ = new Pki(*std::move(pki));
    } else {
      pki_error_ = new std::string(pki.status().ToString());
    }
  }

  static void TearDownTestSuite() {
    if (pki_ != nullptr) {
      std::error_code ec;
      std::filesystem::remove_all(pki_->dir, ec);
    }
    delete pki_;
    pki_ = nullptr;
    delete pki_error_;
    pki_error_ = nullptr;
  }

  void SetUp() override {
    if (access(kOpenssl, X_OK) != 0) {
      GTEST_SKIP() << kOpenssl << " is not installed (Debian package openssl): it makes the "
                   << "test's certificates";
    }
    ASSERT_EQ(pki_error_, nullptr) << "making the certificates: " << *pki_error_;
    ASSERT_NE(pki_, nullptr);
  }

  void TearDown() override {
    if (!HasFailure()) return;
    if (musterd_ != nullptr) std::cerr << "---- musterd ----\n" << musterd_->Logs();
    if (cluster_ != nullptr) std::cerr << "---- etcd ----\n" << cluster_->Logs();
  }

  const Pki& pki() const { return *pki_; }

  // A one-member cluster serving clients over TLS.
  void StartCluster(bool client_cert_auth) {
    EtcdClusterOptions options;
    options.members = 1;
    EtcdClusterOptions::Tls tls;
    tls.ca_file = pki().ca;
    tls.cert_file = pki().server_cert;
    tls.key_file = pki().server_key;
    tls.client_cert_auth = client_cert_auth;
    if (client_cert_auth) {
      tls.client_cert_file = pki().client_cert;
      tls.client_key_file = pki().client_key;
    }
    options.tls = tls;
    auto cluster = EtcdCluster::Start(options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    ASSERT_TRUE(cluster_->tls());
  }

  EtcdRegistryOptions RegistryOptions(std::vector<std::string> endpoints) const {
    EtcdRegistryOptions options;
    options.endpoints = std::move(endpoints);
    options.prefix = "/tls-test";
    options.dial_timeout = kDialTimeout;
    return options;
  }

  // NewEtcdRegistry(options) must fail with Unavailable within the dial
  // timeout (plus slack), not hang.
  // `reason`, when given, must appear in the message (it says why).
  static void ExpectUnavailable(const EtcdRegistryOptions& options, const std::string& what,
                                const std::string& reason = "") {
    SCOPED_TRACE(what);
    const auto start = Clock::now();
    auto registry = NewEtcdRegistry(options);
    const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
    EXPECT_THAT(registry, StatusIs(absl::StatusCode::kUnavailable, ::testing::HasSubstr(reason)));
    EXPECT_LT(took, options.dial_timeout + kDialSlack);
    std::cerr << what << ": " << registry.status() << " after " << took.count() << " ms\n";
  }

  static Pki* pki_;
  static std::string* pki_error_;
  std::unique_ptr<EtcdCluster> cluster_;
  std::unique_ptr<MusterdProcess> musterd_;
};

Pki* EtcdTlsTest::pki_ = nullptr;
std::string* EtcdTlsTest::pki_error_ = nullptr;

// The fixture's own channel speaks TLS, and its URLs say https.
TEST_F(EtcdTlsTest, FixtureServesHttpsAndItsChannelWorks) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(/*client_cert_auth=*/false));
  EXPECT_EQ(cluster_->client_url(0), "https://" + cluster_->endpoint(0));
  EXPECT_THAT(cluster_->client_urls(), ElementsAre(cluster_->client_url(0)));

  auto kv = etcdserverpb::KV::NewStub(cluster_->Channel(0));
  grpc::ClientContext put_context;
  put_context.set_deadline(std::chrono::system_clock::now() + kWait);
  etcdserverpb::PutRequest put;
  put.set_key("/tls-test/probe");
  put.set_value("yes");
  etcdserverpb::PutResponse put_response;
  grpc::Status put_status = kv->Put(&put_context, put, &put_response);
  ASSERT_TRUE(put_status.ok()) << put_status.error_message();

  grpc::ClientContext range_context;
  range_context.set_deadline(std::chrono::system_clock::now() + kWait);
  etcdserverpb::RangeRequest range;
  range.set_key("/tls-test/probe");
  etcdserverpb::RangeResponse range_response;
  grpc::Status range_status = kv->Range(&range_context, range, &range_response);
  ASSERT_TRUE(range_status.ok()) << range_status.error_message();
  ASSERT_EQ(range_response.kvs_size(), 1);
  EXPECT_EQ(range_response.kvs(0).value(), "yes");
}

// (a) An https:// endpoint and the CA: register, list and subscribe work.
TEST_F(EtcdTlsTest, HttpsEndpointWithCaFile) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(/*client_cert_auth=*/false));
  EtcdRegistryOptions options = RegistryOptions({cluster_->client_url(0)});
  options.ca_file = pki().ca;
  auto registry = NewEtcdRegistry(options);
  ASSERT_THAT(registry, IsOk());
  ASSERT_NO_FATAL_FAILURE(ExerciseRegistry(**registry, "https-url"));
}

// (b) tls = true with a plain host:port endpoint does the same.
TEST_F(EtcdTlsTest, TlsFlagWithPlainEndpoint) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(/*client_cert_auth=*/false));
  EtcdRegistryOptions options = RegistryOptions({cluster_->endpoint(0)});
  options.tls = true;
  options.ca_file = pki().ca;
  auto registry = NewEtcdRegistry(options);
  ASSERT_THAT(registry, IsOk());
  ASSERT_NO_FATAL_FAILURE(ExerciseRegistry(**registry, "tls-flag"));
}

// (c) A CA that did not sign etcd's certificate: Unavailable within the dial
// timeout. So is trusting only the system's roots, and so is plaintext to a
// TLS port.
TEST_F(EtcdTlsTest, UntrustedServerIsUnavailableWithinTheDialTimeout) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(/*client_cert_auth=*/false));
  EtcdRegistryOptions options = RegistryOptions({cluster_->client_url(0)});
  options.ca_file = pki().other_ca;
  ExpectUnavailable(options, "a CA that did not sign etcd's certificate",
                    "certificate verify failed");

  options.ca_file.clear();  // the system's roots
  options.dial_timeout = milliseconds(1000);
  ExpectUnavailable(options, "the system's roots");

  options = RegistryOptions({cluster_->endpoint(0)});  // no TLS
  options.dial_timeout = milliseconds(1000);
  ExpectUnavailable(options, "plaintext to a TLS port");
}

// (d) --client-cert-auth: without a client certificate, or with one another
// CA signed, the registry cannot connect; with one etcd's CA signed it works.
TEST_F(EtcdTlsTest, ClientCertificateAuthentication) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(/*client_cert_auth=*/true));
  EtcdRegistryOptions options = RegistryOptions({cluster_->client_url(0)});
  options.ca_file = pki().ca;
  ExpectUnavailable(options, "no client certificate");

  options.cert_file = pki().other_client_cert;
  options.key_file = pki().other_client_key;
  ExpectUnavailable(options, "a client certificate of another CA");

  options.cert_file = pki().client_cert;
  options.key_file = pki().client_key;
  auto registry = NewEtcdRegistry(options);
  ASSERT_THAT(registry, IsOk());
  ASSERT_NO_FATAL_FAILURE(ExerciseRegistry(**registry, "client-cert"));
}

// (e) musterd's cluster mode over TLS with a client certificate: a
// registration over HTTP is listed back, and is in etcd for an EtcdRegistry
// over TLS to see.
TEST_F(EtcdTlsTest, MusterdClusterModeOverTls) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(/*client_cert_auth=*/true));
  musterd_ = std::make_unique<MusterdProcess>(MUSTERD_PATH);
  absl::Status started = musterd_->Start(
      {"--store", "etcd", "--etcd-endpoints", cluster_->client_url(0), "--etcd-prefix",
       "/tls-test", "--etcd-ca", pki().ca, "--etcd-cert", pki().client_cert, "--etcd-key",
       pki().client_key, "--etcd-dial-timeout", "5s", "--election-ttl", "2s"});
  ASSERT_TRUE(started.ok()) << started;

  wire::HttpClient http(musterd_->address());
  auto registered = Must(http.Put(InstancePath("tls-svc", "via-musterd"),
                                  RegisterBody("10.0.0.8:80")));
  ASSERT_EQ(registered.status, 201) << registered.body;
  ListResult list = ParseList(Must(http.Get(ListPath("tls-svc"))));
  EXPECT_EQ(list.status, 200);
  EXPECT_THAT(list.ids(), ElementsAre("via-musterd"));

  EtcdRegistryOptions options = RegistryOptions({cluster_->client_url(0)});
  options.ca_file = pki().ca;
  options.cert_file = pki().client_cert;
  options.key_file = pki().client_key;
  auto registry = NewEtcdRegistry(options);
  ASSERT_THAT(registry, IsOk());
  auto direct = (*registry)->ListServices(TlsQuery(), Call());
  ASSERT_THAT(direct, IsOk());
  ASSERT_EQ(direct->instances.size(), 1u);
  EXPECT_EQ(direct->instances[0].id, "via-musterd");
}

// musterd without the client certificate etcd requires gives up within its
// dial timeout and exits.
TEST_F(EtcdTlsTest, MusterdWithoutClientCertificateExits) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(/*client_cert_auth=*/true));
  musterd_ = std::make_unique<MusterdProcess>(MUSTERD_PATH);
  const auto start = Clock::now();
  absl::Status started = musterd_->Start(
      {"--store", "etcd", "--etcd-endpoints", cluster_->client_url(0), "--etcd-prefix",
       "/tls-test", "--etcd-ca", pki().ca, "--etcd-dial-timeout", "1s"});
  EXPECT_EQ(started.code(), absl::StatusCode::kUnavailable) << started;
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  EXPECT_FALSE(musterd_->running());
}

}  // namespace
}  // namespace muster::testing
