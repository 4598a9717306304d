#include "core/mutex.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace muster {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// Whether `mu` can be taken from another thread right now (without waiting).
bool LockableElsewhere(Mutex& mu) {
  bool taken = false;
  std::thread([&] {
    if (mu.TryLock()) {
      taken = true;
      mu.Unlock();
    }
  }).join();
  return taken;
}

// MutexLock makes increments from several threads exclusive.
TEST(MutexTest, MutexLockExcludesOtherThreads) {
  Mutex mu;
  int count = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        MutexLock lock(mu);
        ++count;
      }
    });
  }
  for (auto& t : threads) t.join();
  MutexLock lock(mu);
  EXPECT_EQ(count, 40000);
}

// TryLock fails while another holds the lock and succeeds once it is free.
TEST(MutexTest, TryLockFailsWhileHeld) {
  Mutex mu;
  {
    MutexLock lock(mu);
    EXPECT_FALSE(LockableElsewhere(mu));
  }
  EXPECT_TRUE(LockableElsewhere(mu));
}

// MutexLock::Unlock lets others in; Lock takes the mutex back, and the
// destructor then releases it (and does not release it twice after Unlock).
TEST(MutexTest, MutexLockCanDropAndRetake) {
  Mutex mu;
  {
    MutexLock lock(mu);
    lock.Unlock();
    EXPECT_TRUE(LockableElsewhere(mu));
    lock.Lock();
    EXPECT_FALSE(LockableElsewhere(mu));
  }
  EXPECT_TRUE(LockableElsewhere(mu));
  {
    MutexLock lock(mu);
    lock.Unlock();
  }
  EXPECT_TRUE(LockableElsewhere(mu));
}

// Readers share a SharedMutex; a writer excludes readers and writers; a
// ReaderLock can drop its hold and take it back.
TEST(MutexTest, SharedMutexSharesReadersAndExcludesWriters) {
  SharedMutex mu;
  auto reader_elsewhere = [&] {
    bool taken = false;
    std::thread([&] {
      if (mu.ReaderTryLock()) {
        taken = true;
        mu.ReaderUnlock();
      }
    }).join();
    return taken;
  };
  auto writer_elsewhere = [&] {
    bool taken = false;
    std::thread([&] {
      if (mu.TryLock()) {
        taken = true;
        mu.Unlock();
      }
    }).join();
    return taken;
  };
  {
    ReaderLock lock(mu);
    EXPECT_TRUE(reader_elsewhere());
    EXPECT_FALSE(writer_elsewhere());
  }
  {
    WriterLock lock(mu);
    EXPECT_FALSE(reader_elsewhere());
    EXPECT_FALSE(writer_elsewhere());
  }
  EXPECT_TRUE(writer_elsewhere());
  {
    ReaderLock lock(mu);
    lock.Unlock();
    EXPECT_TRUE(writer_elsewhere());
    lock.Lock();
    EXPECT_FALSE(writer_elsewhere());
    EXPECT_TRUE(reader_elsewhere());
  }
  EXPECT_TRUE(writer_elsewhere());
}

// A waiter wakes when notified, holding the mutex again.
TEST(MutexTest, CondVarWakesWaiterWithTheLockHeld) {
  Mutex mu;
  CondVar cv;
  bool ready = false;
  std::thread notifier([&] {
    MutexLock lock(mu);
    ready = true;
    cv.NotifyAll();
  });
  {
    MutexLock lock(mu);
    const auto deadline = steady_clock::now() + std::chrono::seconds(30);
    while (!ready && cv.WaitUntil(mu, deadline)) {
    }
    EXPECT_TRUE(ready);
    EXPECT_FALSE(LockableElsewhere(mu));  // held again after the wait
  }
  notifier.join();
}

// Timed waits report a timeout when nobody notifies, after the time given,
// and hold the mutex again.
TEST(MutexTest, CondVarTimedWaitsReportTimeout) {
  Mutex mu;
  CondVar cv;
  MutexLock lock(mu);
  const auto start = steady_clock::now();
  bool woken = cv.WaitFor(mu, milliseconds(20));
  // A spurious wake-up is allowed; then it cannot have timed out yet.
  if (!woken) {
    EXPECT_GE(steady_clock::now() - start, milliseconds(20));
  }
  EXPECT_FALSE(cv.WaitUntil(mu, steady_clock::now() - milliseconds(1)));
  EXPECT_FALSE(LockableElsewhere(mu));
}

// NotifyOne wakes one waiter at least; every waiter ends once all are told.
TEST(MutexTest, CondVarNotifyOneWakesAWaiter) {
  Mutex mu;
  CondVar cv;
  int tokens = 0;
  int waiting = 0;
  std::vector<std::thread> waiters;
  for (int i = 0; i < 3; ++i) {
    waiters.emplace_back([&] {
      MutexLock lock(mu);
      ++waiting;
      while (tokens == 0) cv.Wait(mu);
      --tokens;
    });
  }
  for (int i = 0; i < 3; ++i) {
    MutexLock lock(mu);
    ++tokens;
    cv.NotifyOne();
  }
  for (auto& t : waiters) t.join();
  MutexLock lock(mu);
  EXPECT_EQ(tokens, 0);
  EXPECT_EQ(waiting, 3);
}

}  // namespace
}  // namespace muster
