//! Steady-state recording allocates nothing: once a label set has been seen on a thread, every
//! later record of it is atomics and a thread-local lookup. A counting global allocator (its own
//! test binary, so no other test's allocator is replaced) counts allocations made by this thread
//! while recording.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use sluice_metrics::{DeploymentLabels, Metrics, RequestRecord, Usage};

struct Counting;

thread_local! {
    // `const` and `Drop`-free: touching them from inside the allocator never allocates.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations this thread makes while running `f`.
fn allocations_in(f: impl FnOnce()) -> u64 {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|on| on.set(true));
    f();
    COUNTING.with(|on| on.set(false));
    ALLOCATIONS.with(|n| n.get())
}

#[test]
fn steady_state_recording_does_not_allocate() {
    let m = Metrics::new();
    let d = m.deployment(&DeploymentLabels {
        model_group: "fake-openai-endpoint".into(),
        litellm_model_name: "openai/fake".into(),
        model_id: "m1".into(),
        api_base: "http://up".into(),
        api_provider: "openai".into(),
        tpm_limit: Some(1000.0),
        rpm_limit: None,
    });
    let usage = Usage { prompt_tokens: 1200, completion_tokens: 30 };
    let ok = RequestRecord {
        requested_model: "fake-openai-endpoint",
        route: "/chat/completions",
        status: 200,
        exception_class: None,
        total: Duration::from_micros(100_250),
        upstream: Duration::from_millis(100),
        deployment: Some(&d),
        end_user: "my-new-end-user-1",
        user_agent: "python-requests/2.32",
    };
    let failed = RequestRecord { requested_model: "alias", status: 429, exception_class: Some("RateLimitError"), ..ok };
    let record = || {
        // Own group: the pre-resolved fast path.
        d.attempt_started("fake-openai-endpoint");
        d.attempt_succeeded(
            "fake-openai-endpoint",
            Duration::from_millis(100),
            Some(Duration::from_millis(12)),
            Some(usage),
        );
        d.remaining(Some(9_999.0), Some(99_000.0));
        m.request_finished(&ok);
        // Another requested model and a failure: the thread-local cache path.
        d.attempt_started("alias");
        d.attempt_failed("alias", 429, "RateLimitError", Duration::from_millis(3));
        d.attempt_started("alias");
        d.attempt_succeeded("alias", Duration::from_millis(90), None, Some(usage));
        d.healthy();
        m.request_finished(&failed);
        m.fallback("alias", "fake-openai-endpoint", true, 429, "RateLimitError");
        // No deployment picked (e.g. unknown model).
        m.request_finished(&RequestRecord { deployment: None, status: 400, exception_class: None, ..ok });
    };
    // The first round resolves every series and fills this thread's caches.
    record();
    let n = allocations_in(|| {
        for _ in 0..1000 {
            record();
        }
    });
    assert_eq!(n, 0, "allocations in 1000 steady-state rounds");

    // The counting itself works: a first-seen label set does allocate.
    let first = allocations_in(|| m.request_finished(&RequestRecord { end_user: "someone-new", ..ok }));
    assert!(first > 0);
}
