// Mutexes whose lock annotations a compiler checks.
//
// Why this exists: members are annotated with what guards them
// (ABSL_GUARDED_BY, ABSL_EXCLUSIVE_LOCKS_REQUIRED, ...), but GCC, which builds
// Muster, ignores those attributes, and clang checks them only against a type
// marked as a capability. libstdc++'s std::mutex is not one, so annotations on
// a std::mutex are never verified and drift into fiction. The types here are
// thin, inline wrappers over std::mutex and std::shared_mutex that carry the
// attributes; clang's -Wthread-safety (scripts/check-thread-safety.sh, run by
// `make test`) proves every guarded access holds the right lock.
//
// Why not absl::Mutex: Debian's abseil is not built with ThreadSanitizer, so
// TSan would not see its locking and would report races that are not there.
// The std types underneath stay pthread mutexes that TSan intercepts.
//
// Example:
//   class Counter {
//    public:
//     void Add(int n) ABSL_LOCKS_EXCLUDED(mu_) {
//       MutexLock lock(mu_);
//       total_ += n;
//       changed_.NotifyAll();
//     }
//     void WaitFor(int n) ABSL_LOCKS_EXCLUDED(mu_) {
//       MutexLock lock(mu_);
//       while (total_ < n) changed_.Wait(mu_);
//     }
//    private:
//     Mutex mu_;
//     CondVar changed_;
//     int total_ ABSL_GUARDED_BY(mu_) = 0;
//   };
//
// Waits are written as loops around CondVar::Wait rather than with a
// predicate: clang analyses a lambda as a function of its own and cannot see
// that the lock is held inside it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>

#include "absl/base/thread_annotations.h"

namespace muster {

// An exclusive lock over std::mutex. Not recursive.
class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  // True if the lock was taken.
  bool TryLock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) { return mu_.try_lock(); }

  // Tells the analysis that the caller holds the lock where it cannot prove
  // it (a callback run under the lock). No check at run time: std::mutex does
  // not know its owner.
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK() {}

 private:
  friend class CondVar;
  std::mutex mu_;
};

// A reader/writer lock over std::shared_mutex.
class ABSL_LOCKABLE SharedMutex {
 public:
  SharedMutex() = default;
  SharedMutex(const SharedMutex&) = delete;
  SharedMutex& operator=(const SharedMutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  void ReaderLock() ABSL_SHARED_LOCK_FUNCTION() { mu_.lock_shared(); }
  void ReaderUnlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock_shared(); }
  // True if the lock was taken (exclusively, or shared).
  bool TryLock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) { return mu_.try_lock(); }
  bool ReaderTryLock() ABSL_SHARED_TRYLOCK_FUNCTION(true) { return mu_.try_lock_shared(); }

  // As Mutex::AssertHeld, for a caller holding the lock shared (or
  // exclusively) where the analysis cannot prove it (a lambda run under it).
  void AssertReaderHeld() const ABSL_ASSERT_SHARED_LOCK() {}

 private:
  std::shared_mutex mu_;
};

// Holds a Mutex for its scope. Unlock() and Lock() let a caller drop the lock
// around a call that must not run under it (a callback, a blocking RPC) and
// take it back; the destructor unlocks only if the lock is held.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_.Lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() {
    if (held_) mu_.Unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void Unlock() ABSL_UNLOCK_FUNCTION() {
    mu_.Unlock();
    held_ = false;
  }
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    mu_.Lock();
    held_ = true;
  }

 private:
  Mutex& mu_;
  bool held_ = true;
};

// Holds a SharedMutex shared (for reading) for its scope; Unlock() and Lock()
// as for MutexLock.
class ABSL_SCOPED_LOCKABLE ReaderLock {
 public:
  explicit ReaderLock(SharedMutex& mu) ABSL_SHARED_LOCK_FUNCTION(mu) : mu_(mu) { mu_.ReaderLock(); }
  ~ReaderLock() ABSL_UNLOCK_FUNCTION() {
    if (held_) mu_.ReaderUnlock();
  }
  ReaderLock(const ReaderLock&) = delete;
  ReaderLock& operator=(const ReaderLock&) = delete;

  void Unlock() ABSL_UNLOCK_FUNCTION() {
    mu_.ReaderUnlock();
    held_ = false;
  }
  void Lock() ABSL_SHARED_LOCK_FUNCTION() {
    mu_.ReaderLock();
    held_ = true;
  }

 private:
  SharedMutex& mu_;
  bool held_ = true;
};

// Holds a SharedMutex exclusively (for writing) for its scope.
class ABSL_SCOPED_LOCKABLE WriterLock {
 public:
  explicit WriterLock(SharedMutex& mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_.Lock(); }
  ~WriterLock() ABSL_UNLOCK_FUNCTION() { mu_.Unlock(); }
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;

 private:
  SharedMutex& mu_;
};

// A condition variable used with a Mutex the caller holds. Each wait releases
// the Mutex while it sleeps and holds it again when it returns; it may wake
// spuriously, so callers wait in a loop on their condition.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  void Wait(Mutex& mu) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();  // the caller's lock owns the mutex again
  }

  // False if the deadline passed (the condition may still have turned true).
  template <typename Clock, typename Duration>
  bool WaitUntil(Mutex& mu, const std::chrono::time_point<Clock, Duration>& deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    const bool woken = cv_.wait_until(lock, deadline) == std::cv_status::no_timeout;
    lock.release();
    return woken;
  }

  // False if the time ran out (the condition may still have turned true).
  template <typename Rep, typename Period>
  bool WaitFor(Mutex& mu, const std::chrono::duration<Rep, Period>& timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    const bool woken = cv_.wait_for(lock, timeout) == std::cv_status::no_timeout;
    lock.release();
    return woken;
  }

  void NotifyOne() { cv_.notify_one(); }
  void NotifyAll() { cv_.notify_all(); }

  // The std-style pair that Clock::WaitUntil (include/muster/clock.h, a
  // public header that knows no lock type of ours) calls, so that code on a
  // Mutex waits through an injected clock: `clock->WaitUntil(mu_, cv_, t)`
  // with `mu_` held. Not for direct use: call WaitFor and NotifyAll.
  // Unchecked: Clock::WaitUntil is generic over its lock type and cannot say
  // that it requires `mu`; its callers hold it.
  template <typename Rep, typename Period>
  void wait_for(Mutex& mu, const std::chrono::duration<Rep, Period>& timeout)
      ABSL_NO_THREAD_SAFETY_ANALYSIS {
    WaitFor(mu, timeout);
  }
  void notify_all() { NotifyAll(); }

 private:
  std::condition_variable cv_;
};

}  // namespace muster
