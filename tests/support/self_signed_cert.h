// A throwaway self-signed certificate for 127.0.0.1 (an IP subjectAltName),
// made by the openssl command line in a fresh temporary directory that the
// object removes. For tests of https clients against a server of their own.
#pragma once

#include <string>

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

 private:
  explicit SelfSignedCert(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;  // empty once moved from
};

}  // namespace muster::testing
