//! Coarse deadlines for client connections, kept by one thread instead of tokio's timer.
//!
//! Each client connection has one deadline (`downstream.rs`): for the header of its current
//! request, then for the upstream's answer to it. A tokio timer per connection cost every
//! request a timer reset, and, with timers in the wheel, every park of a runtime thread
//! walked the wheel: about 2,000 instructions a request under callgrind, 7% of what
//! Tollgate added to bare Pingora; Pingora's own timer per upstream response cost 0.7 µs.
//!
//! Here a connection's deadline is an atomic tick count in its [`Deadline`]. One thread
//! ([`Watchdog::start`]) advances a clock of [`TICK`]s and wakes the connections whose
//! deadline has passed. Setting a deadline costs a load and a store; waiting on one
//! registers the task's waker (a compare and swap when it is already registered). A
//! deadline fires between 0 and 2 ticks after it is due, never before. Creating and
//! dropping a [`Deadline`] takes the registry's lock, once per connection.
//!
//! The clock is advanced by [`Watchdog::advance`], so tests drive it without sleeping.

use std::future::poll_fn;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_util::task::AtomicWaker;
use parking_lot::Mutex;

/// The watchdog thread's period: the resolution of every deadline.
pub const TICK: Duration = Duration::from_millis(100);

/// `deadline` of a slot that has none.
const NEVER: u64 = u64::MAX;

/// The clock and the registry of live deadlines. Cheap to clone.
#[derive(Clone)]
pub struct Watchdog {
    inner: Arc<Inner>,
}

struct Inner {
    /// Ticks since the watchdog was made.
    now: AtomicU64,
    slots: Mutex<Vec<Arc<Slot>>>,
}

struct Slot {
    /// The tick at which the deadline is due; [`NEVER`] when none is set.
    deadline: AtomicU64,
    waker: AtomicWaker,
    /// Position in `Inner::slots`; changed only under that lock.
    index: AtomicUsize,
}

impl Watchdog {
    /// A watchdog whose clock moves only by [`Watchdog::advance`] (for tests).
    pub fn manual() -> Watchdog {
        Watchdog {
            inner: Arc::new(Inner {
                now: AtomicU64::new(0),
                slots: Mutex::new(Vec::new()),
            }),
        }
    }

    /// A watchdog with a thread that advances its clock every [`TICK`]. The thread ends
    /// once every clone of the watchdog is dropped.
    pub fn start() -> std::io::Result<Watchdog> {
        let watchdog = Watchdog::manual();
        let inner = Arc::downgrade(&watchdog.inner);
        std::thread::Builder::new()
            .name("tollgate-deadlines".into())
            .spawn(move || run(&inner))?;
        Ok(watchdog)
    }

    /// Moves the clock to `ticks` (it never goes back) and wakes every connection whose
    /// deadline is due.
    pub fn advance(&self, ticks: u64) {
        let now = self.inner.now.fetch_max(ticks, Ordering::AcqRel).max(ticks);
        for slot in self.inner.slots.lock().iter() {
            if slot.deadline.load(Ordering::Acquire) <= now {
                slot.waker.wake();
            }
        }
    }

    /// The current tick.
    pub fn now(&self) -> u64 {
        self.inner.now.load(Ordering::Acquire)
    }

    /// A new deadline, not set.
    pub fn deadline(&self) -> Deadline {
        let slot = Arc::new(Slot {
            deadline: AtomicU64::new(NEVER),
            waker: AtomicWaker::new(),
            index: AtomicUsize::new(0),
        });
        let mut slots = self.inner.slots.lock();
        slot.index.store(slots.len(), Ordering::Relaxed);
        slots.push(slot.clone());
        drop(slots);
        Deadline {
            handle: DeadlineHandle {
                slot,
                inner: self.inner.clone(),
            },
        }
    }

    /// Deadlines alive (one per open client connection).
    pub fn len(&self) -> usize {
        self.inner.slots.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn run(inner: &Weak<Inner>) {
    let started = Instant::now();
    loop {
        std::thread::sleep(TICK);
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let ticks = started.elapsed().as_millis() / TICK.as_millis();
        Watchdog { inner }.advance(u64::try_from(ticks).unwrap_or(NEVER - 1));
    }
}

/// One connection's deadline: what waits on it. Dropping it leaves the registry.
pub struct Deadline {
    handle: DeadlineHandle,
}

/// Sets and clears a [`Deadline`]; held by what must move it without owning it (the
/// proxy's hooks, through the connection's task-local state).
#[derive(Clone)]
pub struct DeadlineHandle {
    slot: Arc<Slot>,
    inner: Arc<Inner>,
}

impl DeadlineHandle {
    /// Due `after` from now, rounded up to whole ticks, plus one tick: the clock may be a
    /// tick behind real time.
    pub fn set(&self, after: Duration) {
        let ticks = after.as_millis().div_ceil(TICK.as_millis()) + 1;
        let ticks = u64::try_from(ticks).unwrap_or(NEVER);
        let due = self.inner.now.load(Ordering::Acquire).saturating_add(ticks);
        self.slot.deadline.store(due, Ordering::Release);
    }

    /// No deadline until the next [`DeadlineHandle::set`].
    pub fn clear(&self) {
        self.slot.deadline.store(NEVER, Ordering::Release);
    }

    pub fn is_due(&self) -> bool {
        self.slot.deadline.load(Ordering::Acquire) <= self.inner.now.load(Ordering::Acquire)
    }
}

impl Deadline {
    pub fn handle(&self) -> &DeadlineHandle {
        &self.handle
    }

    /// Completes once the deadline is due (at once if it is).
    pub async fn due(&self) {
        let handle = &self.handle;
        poll_fn(|cx| {
            if handle.is_due() {
                return Poll::Ready(());
            }
            handle.slot.waker.register(cx.waker());
            // The watchdog may have passed between the check and the registration.
            if handle.is_due() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        let mut slots = self.handle.inner.slots.lock();
        let index = self.handle.slot.index.load(Ordering::Relaxed);
        slots.swap_remove(index);
        if let Some(moved) = slots.get(index) {
            moved.index.store(index, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::sync::atomic::AtomicBool;
    use std::task::{Context, Wake, Waker};

    #[derive(Default)]
    struct Flag(AtomicBool);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    fn millis(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn fires_after_its_time_never_before() {
        let watchdog = Watchdog::manual();
        let deadline = watchdog.deadline();
        deadline.handle().set(millis(250)); // 3 ticks, plus one for a clock that lags
        let flag = Arc::new(Flag::default());
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let mut due = pin!(deadline.due());
        assert!(due.as_mut().poll(&mut cx).is_pending());
        watchdog.advance(3);
        assert!(!flag.0.load(Ordering::SeqCst), "woken before it was due");
        assert!(due.as_mut().poll(&mut cx).is_pending());
        watchdog.advance(4);
        assert!(flag.0.load(Ordering::SeqCst), "not woken when due");
        assert!(due.as_mut().poll(&mut cx).is_ready());
    }

    #[test]
    fn set_again_moves_it_later_and_clear_disarms_it() {
        let watchdog = Watchdog::manual();
        let deadline = watchdog.deadline();
        deadline.handle().set(millis(100));
        watchdog.advance(1);
        deadline.handle().set(millis(100));
        watchdog.advance(2);
        assert!(
            !deadline.handle().is_due(),
            "the first deadline still counted"
        );
        watchdog.advance(3);
        assert!(deadline.handle().is_due());
        deadline.handle().clear();
        watchdog.advance(1_000);
        assert!(!deadline.handle().is_due());
    }

    #[test]
    fn clock_never_goes_back() {
        let watchdog = Watchdog::manual();
        watchdog.advance(10);
        watchdog.advance(4);
        assert_eq!(watchdog.now(), 10);
    }

    #[test]
    fn dropped_deadlines_leave_the_registry() {
        let watchdog = Watchdog::manual();
        let a = watchdog.deadline();
        let b = watchdog.deadline();
        let c = watchdog.deadline();
        assert_eq!(watchdog.len(), 3);
        drop(a);
        // `c` moved into `a`'s place: it must still be found and woken there.
        c.handle().set(millis(100));
        let flag = Arc::new(Flag::default());
        let waker = Waker::from(flag.clone());
        {
            let mut due = pin!(c.due());
            let mut cx = Context::from_waker(&waker);
            assert!(due.as_mut().poll(&mut cx).is_pending());
            watchdog.advance(2);
            assert!(flag.0.load(Ordering::SeqCst));
        }
        drop(b);
        drop(c);
        assert!(watchdog.is_empty());
    }

    #[test]
    fn the_thread_moves_the_clock() {
        let watchdog = Watchdog::start().expect("thread");
        let deadline = watchdog.deadline();
        deadline.handle().set(Duration::ZERO);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        // Due one tick from now: the thread must wake it.
        runtime.block_on(deadline.due());
        assert!(watchdog.now() >= 1);
    }
}
