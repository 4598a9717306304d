// A throwaway self-signed certificate for 127.0.0.1 (an IP subjectAltName),
// made by the openssl command line in a fresh temporary directory that the
// object removes. For tests of https clients against a server of their own.
#pragma once

#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>

#include "absl/status/statusor.h"

namespace muster::testing {

class SelfSignedCert {
 public:
  // FailedPrecondition when /usr/bin/openssl is missing (the caller skips);
  // Internal when it fails.
  static absl::StatusOr<SelfSignedCert> Make(const std::string& prefix);

  SelfSignedCert(SelfSignedCert&& other) noexcept;
  SelfSignedCert& operator=(SelfSignedCert&&) = delete;
  SelfSignedCert(const SelfSignedCert&) = delete;
  ~SelfSignedCert();

  std::string cert_file() const { return dir_ + "/cert.pem"; }  // also the CA to trust
  std::string key_file() const { return dir_ + "/key.pem"; }

  // A server context that presents this certificate. Inline: only the tests
  // that serve TLS (and link OpenSSL) use it.
  std::shared_ptr<boost::asio::ssl::context> ServerContext() const {
    namespace ssl = boost::asio::ssl;
    auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
    context->use_certificate_chain_file(cert_file());
    context->use_private_key_file(key_file(), ssl::context::pem);
    return context;
  }

 private:
  explicit SelfSignedCert(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;  // empty once moved from
};

}  // namespace muster::testing
