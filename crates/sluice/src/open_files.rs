//! The open-files limit, raised to what the system allows before serving or generating load.
//!
//! Every client connection is a file descriptor, and so is every pooled upstream connection: a
//! gateway with 1,000 clients holds about 2,000. Linux usually starts processes with a soft limit
//! of 1,024 and a hard limit far above it, and past the soft limit `accept` fails with "too many
//! open files". Raising the soft limit to the hard one is what nginx (`worker_rlimit_nofile`) and
//! Go's runtime do for the same reason; a limit that is still low is reported with the fix.

/// Descriptors a gateway under the seed's load test needs (1,000 clients, 1,000 upstream
/// connections, the database and listeners): below this the limit is worth a warning.
pub const ENOUGH: u64 = 4096;

/// Raises the soft limit to the hard limit and returns the limit now in force (`None` where it
/// cannot be read).
pub fn raise() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct it is given, which lives on this stack frame.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
        // SAFETY: setrlimit only reads the struct; a refusal leaves the old limit in force.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux, not on every platform
    Some(limit.rlim_cur as u64)
}

/// What to tell the operator about a limit of `now` descriptors, if anything.
pub fn advice(now: u64) -> Option<String> {
    (now < ENOUGH).then(|| {
        format!(
            "the open-files limit is {now}, so about {} client connections can be open at once; raise the hard limit (`ulimit -Hn`, or LimitNOFILE= in a systemd unit) to at least {ENOUGH}",
            now / 2
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let now = raise().expect("the limit can be read");
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: as in `raise`.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
        #[allow(clippy::unnecessary_cast)]
        let current = limit.rlim_cur as u64;
        assert_eq!(current, now);
        assert_eq!(limit.rlim_cur, limit.rlim_max, "the soft limit is the hard one now");
    }

    #[test]
    fn a_low_limit_comes_with_the_fix() {
        let text = advice(1024).unwrap();
        assert!(text.contains("1024") && text.contains("512") && text.contains("LimitNOFILE"), "{text}");
        assert_eq!(advice(ENOUGH), None);
        assert_eq!(advice(1 << 20), None);
    }
}
