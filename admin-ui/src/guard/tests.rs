use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::throttle::FREE_FAILURES;
use super::*;

/// A check that records how many run at once, then answers `answer`.
fn counted(
    running: &Arc<AtomicUsize>,
    most: &Arc<AtomicUsize>,
    answer: bool,
) -> impl FnOnce() -> bool + Send + 'static {
    let (running, most) = (running.clone(), most.clone());
    move || {
        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
        most.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(5));
        running.fetch_sub(1, Ordering::SeqCst);
        answer
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_wrong_passwords_for_a_name_run_one_check_at_a_time_and_only_the_free_ones() {
    let guard = LoginGuard::new(8, 100);
    let (running, most, checks) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let attempts = (0..30).map(|_| {
        let (guard, check, checks) = (
            guard.clone(),
            counted(&running, &most, false),
            checks.clone(),
        );
        tokio::spawn(async move {
            guard
                .turn("admin")
                .await
                .verify(move || {
                    checks.fetch_add(1, Ordering::SeqCst);
                    check()
                })
                .await
        })
    });
    let mut throttled = 0;
    for attempt in attempts.collect::<Vec<_>>() {
        match attempt.await.expect("no panic") {
            Ok(is_valid) => assert!(!is_valid),
            Err(Refusal::Throttled { .. }) => throttled += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        most.load(Ordering::SeqCst),
        1,
        "one check in flight per name"
    );
    assert_eq!(checks.load(Ordering::SeqCst), FREE_FAILURES as usize);
    assert_eq!(throttled, 30 - FREE_FAILURES as usize);
    assert!(
        guard.inner.turns.lock().is_empty(),
        "idle names are forgotten"
    );
}

#[tokio::test]
async fn a_right_password_clears_the_names_failures() {
    let guard = LoginGuard::new(1, 1);
    for _ in 0..FREE_FAILURES - 1 {
        assert_eq!(guard.turn("ops").await.verify(|| false).await, Ok(false));
    }
    assert_eq!(guard.turn("ops").await.verify(|| true).await, Ok(true));
    for _ in 0..FREE_FAILURES {
        assert_eq!(guard.turn("ops").await.verify(|| false).await, Ok(false));
    }
    let refused = guard.turn("ops").await.verify(|| true).await;
    assert!(
        matches!(refused, Err(Refusal::Throttled { .. })),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_beyond_the_slots_wait_and_beyond_the_queue_are_refused_busy() {
    let guard = LoginGuard::new(1, 1);
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let first_turn = guard.turn("a").await;
    let first = tokio::spawn(first_turn.verify(move || hold.recv().is_ok()));
    // Wait until the first check holds the only slot.
    while guard.inner.slots.available_permits() > 0 {
        tokio::task::yield_now().await;
    }
    let second_turn = guard.turn("b").await;
    let second = tokio::spawn(second_turn.verify(|| true));
    while guard.inner.waiting.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    let third = guard.turn("c").await.verify(|| true).await;
    assert_eq!(
        third,
        Err(Refusal::Busy {
            retry_after: BUSY_RETRY_AFTER
        })
    );
    release.send(()).expect("the first check waits");
    assert_eq!(first.await.expect("no panic"), Ok(true));
    assert_eq!(
        second.await.expect("no panic"),
        Ok(true),
        "waited for the slot"
    );
}

#[test]
fn retry_after_rounds_up_to_whole_seconds() {
    let refusal = Refusal::Throttled {
        retry_after: Duration::from_millis(1500),
    };
    assert_eq!(refusal.retry_after_secs(), 2);
    let refusal = Refusal::Busy {
        retry_after: Duration::from_secs(1),
    };
    assert_eq!(refusal.retry_after_secs(), 1);
}

#[test]
fn logged_names_are_cut_after_64_characters() {
    assert_eq!(logged_name("admin"), "admin");
    let long = "é".repeat(100);
    assert_eq!(
        logged_name(&long),
        format!("{}… (200 bytes)", "é".repeat(64))
    );
}
