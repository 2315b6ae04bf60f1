//! One rule for poisoned locks. Every mutex in auditwatch guards values that each update
//! leaves whole (counters, offsets, cursors), and a panic inside a librdkafka callback aborts
//! the process anyway, so a lock poisoned by a panicking holder is taken over as it is.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `Condvar::wait_timeout` under the same rule.
pub fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>, timeout: Duration) -> MutexGuard<'a, T> {
    condvar.wait_timeout(guard, timeout).unwrap_or_else(std::sync::PoisonError::into_inner).0
}
