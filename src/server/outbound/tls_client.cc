#include "server/outbound/tls_client.h"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "core/strings.h"

namespace muster::outbound {

namespace ssl = boost::asio::ssl;
using boost::system::error_code;

TlsClient::TlsClient(bool verify) : verify_(verify), context_(ssl::context::tls_client) {
  context_.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
}

absl::StatusOr<std::shared_ptr<const TlsClient>> TlsClient::Make(const TlsClientOptions& options) {
  std::shared_ptr<TlsClient> client(new TlsClient(options.verify));
  if (!options.verify) return client;
  error_code ec;
  if (options.ca_file.empty()) {
    client->context_.set_default_verify_paths(ec);
    if (ec) {
      return absl::FailedPreconditionError(
          StrCat("cannot load the system CA certificates: ", ec.message()));
    }
  } else {
    client->context_.load_verify_file(options.ca_file, ec);
    if (ec) {
      return absl::FailedPreconditionError(
          StrCat("cannot load the CA certificates in \"", options.ca_file, "\": ", ec.message()));
    }
  }
  return client;
}

std::unique_ptr<TlsClient::Stream> TlsClient::Wrap(boost::asio::ip::tcp::socket socket,
                                                   const std::string& host) const {
  auto stream = std::make_unique<Stream>(std::move(socket), context_);
  SSL* ssl = stream->native_handle();
  error_code not_ip;
  boost::asio::ip::make_address(host, not_ip);
  // SNI is for names only (RFC 6066 rules out IP addresses).
  if (not_ip) SSL_set_tlsext_host_name(ssl, host.c_str());
  if (!verify_) {
    stream->set_verify_mode(ssl::verify_none);
    return stream;
  }
  stream->set_verify_mode(ssl::verify_peer);
  // OpenSSL checks the name (or the IP address) during the handshake, so a
  // mismatch is reported like any other verify failure ("hostname mismatch").
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  if (not_ip) {
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
  } else {
    X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
  }
  return stream;
}

std::string TlsClient::HandshakeError(const error_code& ec, Stream& stream) {
  std::string message = ec.message();
  const long verify = SSL_get_verify_result(stream.native_handle());
  if (verify != X509_V_OK) StrAppend(&message, " (", X509_verify_cert_error_string(verify), ")");
  return message;
}

}  // namespace muster::outbound
