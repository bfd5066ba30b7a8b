//! The server's lock-timeout policy (RFC 4918 §6.6: "the server ultimately chooses").

use std::time::Duration;

use crate::store::LockTimeout;

/// Default, minimum and maximum timeouts; `Infinite` only when allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TimeoutPolicy {
    default: u32,
    min: u32,
    max: u32,
    pub(crate) allow_infinite: bool,
}

fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

impl TimeoutPolicy {
    pub(crate) fn new(default: Duration, min: Duration, max: Duration) -> Self {
        assert!(min <= max, "lock timeouts: min must not exceed max");
        assert!(
            (min..=max).contains(&default),
            "lock timeouts: default must be within min..=max"
        );
        // Whole seconds, at least one (a lock of 0 s would be born expired): each bound
        // rounded the same way, so their order holds.
        let whole = |d: Duration| secs(d).max(1);
        let (default, min, max) = (whole(default), whole(min), whole(max));
        Self {
            default,
            min,
            max,
            allow_infinite: false,
        }
    }

    pub(crate) fn default_timeout(&self) -> LockTimeout {
        LockTimeout::Seconds(self.default)
    }

    /// The timeout to grant for the client's list, taken in its order of preference: the
    /// first entry decides, clamped to the bounds; `Infinite` becomes the maximum unless
    /// allowed; no entry gets the default.
    pub(crate) fn resolve(&self, requested: Option<&[LockTimeout]>) -> LockTimeout {
        match requested.and_then(|r| r.first()) {
            None => LockTimeout::Seconds(self.default),
            Some(LockTimeout::Infinite) if self.allow_infinite => LockTimeout::Infinite,
            Some(LockTimeout::Infinite) => LockTimeout::Seconds(self.max),
            Some(LockTimeout::Seconds(n)) => LockTimeout::Seconds((*n).clamp(self.min, self.max)),
        }
    }
}

impl Default for TimeoutPolicy {
    fn default() -> Self {
        Self::new(
            Duration::from_secs(600),
            Duration::from_secs(1),
            Duration::from_secs(86_400),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_clamps_and_prefers_first() {
        let p = TimeoutPolicy::default();
        assert_eq!(p.resolve(None), LockTimeout::Seconds(600));
        assert_eq!(p.resolve(Some(&[])), LockTimeout::Seconds(600));
        assert_eq!(
            p.resolve(Some(&[LockTimeout::Seconds(0)])),
            LockTimeout::Seconds(1)
        );
        assert_eq!(
            p.resolve(Some(&[LockTimeout::Seconds(u32::MAX)])),
            LockTimeout::Seconds(86_400)
        );
        assert_eq!(
            p.resolve(Some(&[LockTimeout::Infinite, LockTimeout::Seconds(30)])),
            LockTimeout::Seconds(86_400)
        );
        assert_eq!(
            p.resolve(Some(&[LockTimeout::Seconds(30), LockTimeout::Infinite])),
            LockTimeout::Seconds(30)
        );
        let inf = TimeoutPolicy {
            allow_infinite: true,
            ..TimeoutPolicy::default()
        };
        assert_eq!(
            inf.resolve(Some(&[LockTimeout::Infinite])),
            LockTimeout::Infinite
        );
    }

    #[test]
    #[should_panic(expected = "default must be within")]
    fn bad_policy_panics_at_configuration() {
        let _ = TimeoutPolicy::new(
            Duration::from_secs(10),
            Duration::from_secs(20),
            Duration::from_secs(30),
        );
    }
}
