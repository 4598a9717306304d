// The connections musterd holds open, and what it does when there are too
// many: it closes the idlest ones first (those waiting for a request the
// longest), so that a flood of idle or stalled connections cannot crowd out
// clients that send requests. A connection that streams a watch, or has a
// request in progress, is never shed.
//
// Two bounds: all connections (--max-connections, by default from the
// process's file-descriptor limit) and those of one client address
// (--max-connections-per-client). A connection over a bound sheds the
// idlest connection within that bound; when none of them is idle, the new
// connection is refused (answered 503 and closed).
//
// Thread-safe: connections live on every I/O thread. A connection's socket
// is closed only on its own executor.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "core/mutex.h"
#include "server/async_util.h"

namespace muster {

struct ConnectionLimits {
  size_t max_connections = 0;  // 0: no bound
  size_t max_per_client = 0;   // 0: no bound
};

// Raises the soft limit of open files to the hard limit and returns the
// result; the default of max_connections is drawn from it.
uint64_t RaiseOpenFileLimit();
// The default --max-connections for `open_files`: what is left after a
// reserve for the store, probes, webhooks and the log.
size_t DefaultMaxConnections(uint64_t open_files);

class ConnectionTable {
 public:
  // What the table knows of one connection. Made by Admit; the session
  // updates it as it goes.
  class Connection {
   public:
    // The session is waiting for (the rest of) a request's header: it may
    // be shed. Called on the connection's executor.
    void Waiting() {
      last_active_.store(Now(), std::memory_order_relaxed);
      waiting_.store(true, std::memory_order_relaxed);
    }
    // Bytes arrived.
    void Active() { last_active_.store(Now(), std::memory_order_relaxed); }
    // A request is being read or answered: not shed.
    void Busy() { waiting_.store(false, std::memory_order_relaxed); }
    // The connection streams a watch from now on, with its socket somewhere
    // else: never shed. Called on the connection's executor.
    void Streaming() {
      Busy();
      close = nullptr;
    }

   private:
    friend class ConnectionTable;
    static int64_t Now() {
      return std::chrono::steady_clock::now().time_since_epoch().count();
    }
    std::string client;            // the peer's address, without port
    asio::any_io_executor executor;
    // Closes the socket; run, read and reset on `executor` only.
    std::function<void()> close;
    std::atomic<int64_t> last_active_{Now()};
    std::atomic<bool> waiting_{true};
    std::atomic<bool> shed_{false};
  };

  // Keeps a connection in the table for as long as it lives.
  class Registration {
   public:
    Registration(ConnectionTable* table, std::shared_ptr<Connection> c)
        : table_(table), connection_(std::move(c)) {}
    Registration(Registration&& other) noexcept = default;
    Registration& operator=(Registration&&) = delete;
    ~Registration() {
      if (connection_ != nullptr) table_->Remove(connection_);
    }
    Connection* operator->() const { return connection_.get(); }
    // Whether the table closed this connection to make room.
    bool shed() const { return connection_->shed_.load(); }

   private:
    ConnectionTable* table_;
    std::shared_ptr<Connection> connection_;
  };

  explicit ConnectionTable(ConnectionLimits limits) : limits_(limits) {}

  // Takes in a connection from `client` whose socket `close` closes (run on
  // `executor`, while the returned registration lives). Sheds the idlest
  // connection of a bound the new one goes over; nullopt when there is none
  // to shed: the new one must be refused.
  std::optional<Registration> Admit(std::string client, asio::any_io_executor executor,
                                    std::function<void()> close);

  // Sheds the idlest connection of all, if any is idle (when the process ran
  // out of descriptors regardless). Whether one was shed.
  bool ShedIdlest();

  struct Stats {
    size_t open = 0;
    size_t max = 0;
    uint64_t shed = 0;     // closed to make room
    uint64_t refused = 0;  // turned away: nothing idle to shed
  };
  Stats stats() const;
  const ConnectionLimits& limits() const { return limits_; }

 private:
  void Remove(const std::shared_ptr<Connection>& c);
  // The idlest waiting connection, among one client's or all; nullptr when
  // none waits.
  std::shared_ptr<Connection> Idlest(const std::string* client) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Shed(std::shared_ptr<Connection> c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ConnectionLimits limits_;
  mutable Mutex mu_;
  absl::flat_hash_set<std::shared_ptr<Connection>> all_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::shared_ptr<Connection>>> by_client_
      ABSL_GUARDED_BY(mu_);
  uint64_t shed_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t refused_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace muster
