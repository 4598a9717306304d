#include "support/self_signed_cert.h"

#include <filesystem>
#include <sstream>
#include <utility>

#include "support/run_command.h"

namespace muster::testing {

absl::StatusOr<SelfSignedCert> SelfSignedCert::Make(const std::string& prefix) {
  if (!std::filesystem::exists("/usr/bin/openssl")) {
    return absl::FailedPreconditionError("no /usr/bin/openssl");
  }
  auto dir = MakeTempDir(prefix);
  if (!dir.ok()) return dir.status();
  SelfSignedCert cert(*dir);
  CommandResult made = RunCommand(
      {"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
       "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", cert.key_file(), "-out",
       cert.cert_file(), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
       "subjectAltName=IP:127.0.0.1"});
  if (made.exit_code != 0) {
    std::ostringstream out;
    out << made;
    return absl::InternalError("openssl req failed: " + out.str());
  }
  return cert;
}

SelfSignedCert::SelfSignedCert(SelfSignedCert&& other) noexcept
    : dir_(std::exchange(other.dir_, std::string())) {}

SelfSignedCert::~SelfSignedCert() {
  if (dir_.empty()) return;
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

}  // namespace muster::testing
