//! Key lookup under concurrency: one KV read per key however many requests miss at once, and
//! refresh-ahead (served from memory, one background read, never trusted past the TTL, never
//! resurrecting what an admin write in this isolate evicted).

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use super::races::{drive, for_every_schedule, Call};
use super::*;
use crate::app::lookup;
use crate::http::plain::Response;
use crate::http::problem::ApiError;

const POLICY: &str = include_str!("../../../config/policy.json");

fn poll_once<F: Future>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    f.poll(&mut Context::from_waker(Waker::noop()))
}

/// A world whose cache holds nothing for `secret`'s key (admin writes evict what they touch).
fn uncached_key(w: &World) -> KeyHash {
    let (_, secret) = w.create_key("svc", &["projects:viewer"]);
    let hash = hash_of(&secret);
    w.st.cache.borrow_mut().evict(&hash);
    hash
}

#[test]
fn concurrent_misses_for_one_key_share_one_read() {
    let w = World::new();
    let hash = uncached_key(&w);
    w.faults.set_yielding(true);
    let reads0 = w.edge.reads();
    let now = w.now();
    let mut a = pin!(lookup::entry(&w.st, &w.edge, &hash, now));
    let mut b = pin!(lookup::entry(&w.st, &w.edge, &hash, now));
    let mut c = pin!(lookup::entry(&w.st, &w.edge, &hash, now));
    assert!(poll_once(a.as_mut()).is_pending(), "a reads KV (the store yields once)");
    assert!(poll_once(b.as_mut()).is_pending(), "b waits for a's read");
    assert!(poll_once(c.as_mut()).is_pending(), "c waits for a's read");
    assert_eq!(w.st.reads.in_flight(), 1);
    let Poll::Ready(Ok(Some(ea))) = poll_once(a.as_mut()) else {
        panic!("a's read answers")
    };
    let Poll::Ready(Ok(Some(eb))) = poll_once(b.as_mut()) else {
        panic!("b gets a's answer")
    };
    let Poll::Ready(Ok(Some(ec))) = poll_once(c.as_mut()) else {
        panic!("c gets a's answer")
    };
    assert_eq!(w.edge.reads() - reads0, 1, "three concurrent misses, one KV read");
    assert!(Rc::ptr_eq(&ea, &eb) && Rc::ptr_eq(&ea, &ec));
    assert_eq!(w.st.reads.in_flight(), 0);
}

/// An edge that resumes waiters the way Workers must: the reader's code only hands each
/// resumption to the runtime (`queued`), which delivers it later in the waiter's own request.
struct Contexts<'a> {
    inner: &'a MemEdge,
    queued: Rc<std::cell::RefCell<Vec<Box<dyn FnOnce()>>>>,
}

impl crate::store::Edge for Contexts<'_> {
    async fn get(&self, hash: &KeyHash) -> crate::store::StoreResult<Option<KeyRecord>> {
        self.inner.get(hash).await
    }
    async fn put(&self, hash: &KeyHash, record: &KeyRecord, now: Millis) -> crate::store::StoreResult<()> {
        self.inner.put(hash, record, now).await
    }
    async fn delete(&self, hash: &KeyHash) -> crate::store::StoreResult<()> {
        self.inner.delete(hash).await
    }
    fn park(&self) -> crate::store::Parked {
        let local = crate::store::Parked::local();
        let queued = Rc::clone(&self.queued);
        crate::store::Parked {
            wait: local.wait,
            wake: Box::new(move || queued.borrow_mut().push(local.wake)),
        }
    }
}

struct CountingWaker(std::sync::atomic::AtomicUsize);

impl std::task::Wake for CountingWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A request waiting for another request's read must not be woken by the reader's own code: on
/// Workers it would then run inside the reader's request, and its forward fail there ("Cannot
/// perform I/O on behalf of a different request": 500s and hung requests on a cold isolate
/// under load, found with wrk against wrangler dev).
#[test]
fn waiters_resume_in_their_own_request_not_inside_the_readers() {
    let w = World::new();
    let hash = uncached_key(&w);
    w.faults.set_yielding(true);
    let edge = Contexts {
        inner: &w.edge,
        queued: Rc::default(),
    };
    let reads0 = w.edge.reads();
    let now = w.now();
    let counter = std::sync::Arc::new(CountingWaker(Default::default()));
    let b_waker = Waker::from(std::sync::Arc::clone(&counter));
    let woken = || counter.0.load(std::sync::atomic::Ordering::SeqCst);
    let mut a = pin!(lookup::entry(&w.st, &edge, &hash, now));
    let mut b = pin!(lookup::entry(&w.st, &edge, &hash, now));
    assert!(poll_once(a.as_mut()).is_pending(), "a reads KV");
    assert!(
        b.as_mut().poll(&mut Context::from_waker(&b_waker)).is_pending(),
        "b waits for a's read"
    );
    assert!(
        matches!(poll_once(a.as_mut()), Poll::Ready(Ok(Some(_)))),
        "a's read answers"
    );
    assert_eq!(woken(), 0, "a's code woke b's task itself");
    assert_eq!(
        edge.queued.borrow().len(),
        1,
        "b's resumption goes through the edge's park"
    );
    assert!(
        b.as_mut().poll(&mut Context::from_waker(&b_waker)).is_pending(),
        "b waits for its own resumption"
    );
    let resumptions: Vec<_> = edge.queued.borrow_mut().drain(..).collect();
    for wake in resumptions {
        wake();
    }
    assert_eq!(woken(), 1, "b is woken by its resumption");
    assert!(matches!(
        b.as_mut().poll(&mut Context::from_waker(&b_waker)),
        Poll::Ready(Ok(Some(_)))
    ));
    assert_eq!(w.edge.reads() - reads0, 1, "one KV read for both");
}

#[test]
fn a_failed_shared_read_fails_every_waiter_and_is_not_remembered() {
    let w = World::new();
    let hash = uncached_key(&w);
    w.faults.set_yielding(true);
    w.faults.fail_call(0, crate::store::memory::FaultMode::Before);
    let now = w.now();
    let mut a = pin!(lookup::entry(&w.st, &w.edge, &hash, now));
    let mut b = pin!(lookup::entry(&w.st, &w.edge, &hash, now));
    assert!(poll_once(a.as_mut()).is_pending());
    assert!(poll_once(b.as_mut()).is_pending());
    assert!(matches!(
        poll_once(a.as_mut()),
        Poll::Ready(Err(ApiError::Unavailable { .. }))
    ));
    assert!(matches!(
        poll_once(b.as_mut()),
        Poll::Ready(Err(ApiError::Unavailable { .. }))
    ));
    // The next request reads again (and succeeds).
    assert!(matches!(
        block_on(lookup::entry(&w.st, &w.edge, &hash, now)),
        Ok(Some(_))
    ));
}

#[test]
fn a_cancelled_reader_releases_its_waiters() {
    let w = World::new();
    let hash = uncached_key(&w);
    w.faults.set_yielding(true);
    let reads0 = w.edge.reads();
    let now = w.now();
    let mut b = Box::pin(lookup::entry(&w.st, &w.edge, &hash, now));
    {
        let mut a = Box::pin(lookup::entry(&w.st, &w.edge, &hash, now));
        assert!(poll_once(a.as_mut()).is_pending());
        assert!(poll_once(b.as_mut()).is_pending());
        // a's request is cancelled (client gone) while its KV read is pending.
    }
    assert_eq!(w.st.reads.in_flight(), 0);
    let answer = block_on(b);
    assert!(
        matches!(answer, Ok(Some(_))),
        "b reads for itself instead of waiting forever"
    );
    assert_eq!(
        w.edge.reads() - reads0,
        2,
        "a's read was abandoned; b read once for itself"
    );
}

#[test]
fn refresh_ahead_serves_from_memory_and_renews_busy_keys() {
    // The cache's own timing: the revocation feed's gate on it is tested in tests/feed.rs.
    let w = World::with(&[("KEY_CACHE_REFRESH_S", "10"), ("REVOCATION_FEED", "off")], POLICY);
    let hash = uncached_key(&w);
    let t0 = w.now();
    assert!(block_on(lookup::entry(&w.st, &w.edge, &hash, t0)).unwrap().is_some());
    let reads0 = w.edge.reads();
    // Before the window: a hit, nothing to refresh.
    assert!(matches!(lookup::cached(&w.st, &hash, t0 + 19_999), Some(Some(_))));
    assert!(!lookup::refresh_due(&w.st, &hash, t0 + 19_999));
    // In the window: still a hit from memory; the first such request starts one refresh.
    assert!(matches!(lookup::cached(&w.st, &hash, t0 + 25_000), Some(Some(_))));
    assert!(lookup::refresh_due(&w.st, &hash, t0 + 25_000));
    assert!(!lookup::refresh_due(&w.st, &hash, t0 + 25_001));
    assert_eq!(w.edge.reads(), reads0, "the request itself read nothing");
    block_on(lookup::refresh(&w.st, &w.edge, &hash, t0 + 25_000));
    assert_eq!(w.edge.reads() - reads0, 1);
    // Renewed from the refresh's start: a hit where the first entry would have expired.
    assert!(matches!(lookup::cached(&w.st, &hash, t0 + 54_999), Some(Some(_))));
    assert!(
        lookup::cached(&w.st, &hash, t0 + 55_000).is_none(),
        "trusted ttl from the read, no longer"
    );
}

/// The default window is sized for KV's bill: every refresh is a read, and a key used once a second
/// must cost about TTL / (TTL - window) = 30 / 27 of the reads it would cost without refresh-ahead
/// (a 10 s window cost 30 / 20 = 1.5x), while never waiting on KV after its first request.
#[test]
fn default_refresh_ahead_keeps_a_busy_key_off_kv_for_a_ninth_more_reads() {
    let w = World::with(&[("REVOCATION_FEED", "off")], POLICY);
    let hash = uncached_key(&w);
    let t0 = w.now();
    let reads0 = w.edge.reads();
    let mut waited = 0;
    for s in 0..300 {
        let now = t0 + s * 1_000;
        if lookup::cached(&w.st, &hash, now).is_none() {
            waited += 1;
            assert!(block_on(lookup::entry(&w.st, &w.edge, &hash, now)).unwrap().is_some());
        } else if lookup::refresh_due(&w.st, &hash, now) {
            block_on(lookup::refresh(&w.st, &w.edge, &hash, now));
        }
    }
    assert_eq!(waited, 1, "only the first request waits on KV");
    let reads = w.edge.reads() - reads0;
    // 300 s of one request a second: 10 reads without refresh-ahead, 15 with a 10 s window.
    assert!((10..=12).contains(&reads), "{reads} KV reads in 300 s");
}

#[test]
fn a_refresh_sees_a_revocation_made_elsewhere() {
    // The cache's own timing: the revocation feed's gate on it is tested in tests/feed.rs.
    let w = World::with(&[("KEY_CACHE_REFRESH_S", "10"), ("REVOCATION_FEED", "off")], POLICY);
    let (id, secret) = w.create_key("svc", &["projects:viewer"]);
    let hash = hash_of(&secret);
    let t0 = w.now();
    w.st.cache.borrow_mut().evict(&hash);
    assert!(block_on(lookup::entry(&w.st, &w.edge, &hash, t0)).unwrap().is_some());
    // Revoked in another isolate: here, only the edge changes.
    let other = World::new();
    other.records.restore(w.records.snapshot());
    other.edge.restore(w.edge.snapshot());
    other.now.set(w.now());
    assert_eq!(
        other.admin("POST", &format!("/admin/v1/keys/{id}/revoke"), None).status,
        200
    );
    w.edge.restore(other.edge.snapshot());
    assert!(lookup::refresh_due(&w.st, &hash, t0 + 21_000));
    block_on(lookup::refresh(&w.st, &w.edge, &hash, t0 + 21_000));
    assert!(
        matches!(lookup::cached(&w.st, &hash, t0 + 21_001), Some(None)),
        "the refreshed entry is the revocation (remembered as unknown)"
    );
}

/// A refresh of a key and a revoke of it through this isolate, in every interleaving of their
/// storage steps: the revoke's eviction must never be undone by the refresh's older read.
#[test]
fn a_refresh_never_resurrects_a_key_revoked_in_this_isolate() {
    let w0 = World::with(&[("KEY_CACHE_REFRESH_S", "10")], POLICY);
    let (id, secret) = w0.create_key("svc", &["projects:viewer"]);
    let hash = hash_of(&secret);
    let (records0, edge0, t0) = (w0.records.snapshot(), w0.edge.snapshot(), w0.now());
    let runs = for_every_schedule(|prefix| {
        let w = World::with(&[("KEY_CACHE_REFRESH_S", "10")], POLICY);
        w.records.restore(records0.clone());
        w.edge.restore(edge0.clone());
        w.now.set(t0);
        assert!(block_on(lookup::entry(&w.st, &w.edge, &hash, t0)).unwrap().is_some());
        w.now.set(t0 + 25_000);
        assert!(lookup::refresh_due(&w.st, &hash, t0 + 25_000));
        w.faults.set_yielding(true);
        w.faults.set_reads_in_transit(true);
        let refresh: Call<'_> = Box::pin(async {
            lookup::refresh(&w.st, &w.edge, &hash, t0 + 25_000).await;
            Response {
                status: 204,
                headers: Vec::new(),
                body: String::new(),
            }
        });
        let revoke: Call<'_> =
            Box::pin(w.call_async(admin_req("POST", &format!("/admin/v1/keys/{id}/revoke"), None, ROOT)));
        let (choices, answers) = drive([Some(refresh), Some(revoke)], prefix);
        w.faults.set_yielding(false);
        assert_eq!(answers[1].as_ref().unwrap().status, 200, "schedule {choices:?}");
        assert!(
            !matches!(lookup::cached(&w.st, &hash, t0 + 25_001), Some(Some(_))),
            "schedule {choices:?}: the revoked key is served from the cache again"
        );
        choices
    });
    assert!(runs > 3, "{runs} schedules");
}
