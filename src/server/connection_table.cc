#include "server/connection_table.h"

#include <sys/resource.h>

#include <algorithm>

namespace muster {

uint64_t RaiseOpenFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return limit.rlim_cur == RLIM_INFINITY ? uint64_t{1} << 20 : static_cast<uint64_t>(limit.rlim_cur);
}

size_t DefaultMaxConnections(uint64_t open_files) {
  // RocksDB keeps its files open (a few hundred at most for a registry),
  // and each probe, webhook and etcd channel takes one while it runs: a
  // quarter of the limit, at least 256 and at most 4096, stays theirs.
  const uint64_t reserve = std::clamp<uint64_t>(open_files / 4, 256, 4096);
  const uint64_t left = open_files > reserve ? open_files - reserve : 0;
  return static_cast<size_t>(std::max<uint64_t>(left, 16));
}

std::optional<ConnectionTable::Registration> ConnectionTable::Admit(std::string client,
                                                                      asio::any_io_executor executor,
                                                                      std::function<void()> close) {
  auto c = std::make_shared<Connection>();
  c->client = std::move(client);
  c->executor = std::move(executor);
  c->close = std::move(close);
  MutexLock lock(mu_);
  const auto client_count = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = by_client_.find(c->client);
    return it == by_client_.end() ? size_t{0} : it->second.size();
  };
  // Room within the client's own bound first: its idlest connection goes,
  // not somebody else's.
  if (limits_.max_per_client != 0 && client_count() >= limits_.max_per_client) {
    std::shared_ptr<Connection> victim = Idlest(&c->client);
    if (victim == nullptr) {
      ++refused_;
      return std::nullopt;
    }
    Shed(std::move(victim));
  }
  if (limits_.max_connections != 0 && all_.size() >= limits_.max_connections) {
    std::shared_ptr<Connection> victim = Idlest(nullptr);
    if (victim == nullptr) {
      ++refused_;
      return std::nullopt;
    }
    Shed(std::move(victim));
  }
  by_client_[c->client].insert(c);
  all_.insert(c);
  return Registration(this, std::move(c));
}

bool ConnectionTable::ShedIdlest() {
  MutexLock lock(mu_);
  std::shared_ptr<Connection> victim = Idlest(nullptr);
  if (victim == nullptr) return false;
  Shed(std::move(victim));
  return true;
}

std::shared_ptr<ConnectionTable::Connection> ConnectionTable::Idlest(const std::string* client) const {
  std::shared_ptr<Connection> idlest;
  int64_t oldest = 0;
  const auto consider = [&](const std::shared_ptr<Connection>& c) {
    if (!c->waiting_.load(std::memory_order_relaxed) || c->shed_.load(std::memory_order_relaxed)) return;
    const int64_t at = c->last_active_.load(std::memory_order_relaxed);
    if (idlest == nullptr || at < oldest) {
      idlest = c;
      oldest = at;
    }
  };
  if (client == nullptr) {
    for (const auto& c : all_) consider(c);
    return idlest;
  }
  auto it = by_client_.find(*client);
  if (it == by_client_.end()) return nullptr;
  for (const auto& c : it->second) consider(c);
  return idlest;
}

void ConnectionTable::Shed(std::shared_ptr<Connection> c) {
  // Out of the table at once, so the bound counts the new connection
  // against those that stay; the socket closes on its own thread.
  c->shed_.store(true);
  ++shed_;
  auto mine = by_client_.find(c->client);
  if (mine != by_client_.end()) {
    mine->second.erase(c);
    if (mine->second.empty()) by_client_.erase(mine);
  }
  all_.erase(c);
  asio::any_io_executor executor = c->executor;
  asio::post(executor, [c = std::move(c)] {
    // On the connection's thread: a request may have arrived since it was
    // picked. It is not cut off then; it goes on uncounted until it ends.
    if (c->close && c->waiting_.load(std::memory_order_relaxed)) c->close();
  });
}

void ConnectionTable::Remove(const std::shared_ptr<Connection>& c) {
  c->close = nullptr;  // on the connection's executor: a posted close finds nothing to close
  MutexLock lock(mu_);
  if (all_.erase(c) == 0) return;  // shed before
  auto mine = by_client_.find(c->client);
  if (mine != by_client_.end()) {
    mine->second.erase(c);
    if (mine->second.empty()) by_client_.erase(mine);
  }
}

ConnectionTable::Stats ConnectionTable::stats() const {
  MutexLock lock(mu_);
  return Stats{all_.size(), limits_.max_connections, shed_, refused_};
}

}  // namespace muster
