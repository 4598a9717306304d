// A raw loopback TCP connection to musterd, for tests that send bytes no
// well-behaved client would: half requests, smuggling attempts, stalls.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace muster::testing {

class RawConnection {
 public:
  // Connects to 127.0.0.1:port, from `source` (another loopback address,
  // e.g. "127.0.0.2", to be another client) when given; connected() tells
  // whether it worked.
  explicit RawConnection(uint16_t port, const char* source = nullptr);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return connected_; }
  // Everything received so far.
  const std::string& received() const { return received_; }
  bool Send(const std::string& bytes);
  // True when the server closes the connection within `timeout`; what it
  // sends first is kept in received().
  bool ClosedWithin(std::chrono::milliseconds timeout);
  // Reads for up to `timeout` or until `text` has been received; whether it was.
  bool ReceivedWithin(const std::string& text, std::chrono::milliseconds timeout);

 private:
  // Waits up to `timeout` for bytes; false when none came. Sets closed_ on EOF.
  bool ReadSome(std::chrono::milliseconds timeout);

  int fd_ = -1;
  bool connected_ = false;
  bool closed_ = false;
  std::string received_;
};

// How many times `what` occurs in `text`.
size_t CountOf(const std::string& text, const std::string& what);

}  // namespace muster::testing
