// The TLS side of musterd's outbound https (HTTP checks, webhooks): one
// client context, shared by every connection made with it, and the
// per-connection setup: SNI, and verification of the peer's certificate
// chain and of its name (or IP address) against the URL's host.
#pragma once

#include <memory>
#include <string>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/system/error_code.hpp>

#include "absl/status/statusor.h"

namespace muster::outbound {

struct TlsClientOptions {
  // Check the peer's certificate against the trusted roots and its name
  // against the host. Off: any certificate is accepted (tls_skip_verify).
  bool verify = true;
  // PEM roots to trust instead of the system's; empty: the system's.
  std::string ca_file;
};

// Thread-safe: connections on any thread may share one.
class TlsClient {
 public:
  using Stream = boost::asio::ssl::stream<boost::asio::ip::tcp::socket>;

  // FailedPrecondition when the roots cannot be loaded ("cannot load the
  // system CA certificates: ..."); the caller names whose they are.
  static absl::StatusOr<std::shared_ptr<const TlsClient>> Make(const TlsClientOptions& options);

  // A TLS stream over `socket` (connected), set up for a handshake with
  // `host` (a name or an IP address, IPv6 without brackets).
  std::unique_ptr<Stream> Wrap(boost::asio::ip::tcp::socket socket, const std::string& host) const;

  // A failed handshake's error, with OpenSSL's reason for refusing the peer's
  // certificate when that was the cause: "certificate verify failed
  // (self-signed certificate)".
  static std::string HandshakeError(const boost::system::error_code& ec, Stream& stream);

 private:
  explicit TlsClient(bool verify);

  const bool verify_;
  // SSL_CTX is safe to make connections from on several threads; the
  // context is not changed after Make.
  mutable boost::asio::ssl::context context_;
};

}  // namespace muster::outbound
