// What clang's -Wthread-safety reports over core/mutex.h: each misuse below
// must be reported with the message given, and the correct uses must pass
// silently. Not built by GCC; the test core_mutex_annotations_checked runs
// `clang++ -fsyntax-only -Wthread-safety -Xclang -verify` on this file
// (tests/unit/core/CMakeLists.txt), which fails on a missing or an extra
// diagnostic. If Mutex lost its annotations, every misuse would go unseen
// and this test would fail.
#include "core/mutex.h"

#include <chrono>

namespace muster {

class Account {
 public:
  // Misuses.
  int UnlockedRead() const {
    return balance_;  // expected-warning {{reading variable 'balance_' requires holding mutex 'mu_'}}
  }
  void WriteUnderReaderLock(int n) {
    ReaderLock lock(rw_);
    shared_ = n;  // expected-warning {{writing variable 'shared_' requires holding mutex 'rw_' exclusively}}
  }
  void CallWithoutLock() {
    AddLocked(1);  // expected-warning {{calling function 'AddLocked' requires holding mutex 'mu_' exclusively}}
  }
  void WaitWithoutLock() {
    cv_.Wait(mu_);  // expected-warning {{calling function 'Wait' requires holding mutex 'mu_' exclusively}}
  }
  void WriteAfterUnlock() {
    MutexLock lock(mu_);
    lock.Unlock();
    ++balance_;  // expected-warning {{writing variable 'balance_' requires holding mutex 'mu_' exclusively}}
  }
  void LockTwice() {
    MutexLock lock(mu_);  // expected-note {{mutex acquired here}}
    mu_.Lock();  // expected-warning {{acquiring mutex 'mu_' that is already held}}
  }

  // Correct uses.
  void AddLocked(int n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { balance_ += n; }
  void Add(int n) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(mu_);
    AddLocked(n);
    lock.Unlock();
    lock.Lock();
    balance_ += n;
    cv_.NotifyAll();
  }
  int WaitForPositive() {
    MutexLock lock(mu_);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (balance_ <= 0 && cv_.WaitUntil(mu_, deadline)) {
    }
    while (balance_ <= 0) cv_.Wait(mu_);
    return balance_;
  }
  bool TryAdd(int n) {
    if (!mu_.TryLock()) return false;
    balance_ += n;
    mu_.Unlock();
    return true;
  }
  int ReadShared() {
    ReaderLock lock(rw_);
    int n = shared_;
    lock.Unlock();
    lock.Lock();
    return n + shared_;
  }
  int ReadSharedAfterUnlock() {
    ReaderLock lock(rw_);
    lock.Unlock();
    return shared_;  // expected-warning {{reading variable 'shared_' requires holding mutex 'rw_'}}
  }
  void WriteShared(int n) {
    WriterLock lock(rw_);
    shared_ = n;
  }

 private:
  mutable Mutex mu_;
  CondVar cv_;
  int balance_ ABSL_GUARDED_BY(mu_) = 0;
  SharedMutex rw_;
  int shared_ ABSL_GUARDED_BY(rw_) = 0;
};

}  // namespace muster
