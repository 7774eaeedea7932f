//! Reconnect delays: exponential backoff with full jitter (a uniformly random wait between zero
//! and the capped exponential), so a server restart is not met by every client at once. The
//! server's SSE `retry:` hint replaces the base delay.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_millis(500), Duration::from_secs(30))
    }
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self { base, cap, attempt: 0 }
    }

    /// The server's `retry:` hint: the reconnection time it asks for.
    pub fn set_base(&mut self, base: Duration) {
        self.base = base.min(self.cap);
    }

    pub fn base(&self) -> Duration {
        self.base
    }

    /// A connection worked: the next failure starts from the base again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The ceiling of the next delay: `min(cap, base * 2^attempt)`.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(20)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The next delay, uniform in `[0, ceiling]`; each call raises the ceiling.
    pub fn next_delay(&mut self, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rng.gen_range(0..=millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn ceilings_double_up_to_the_cap_and_delays_stay_under_them() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut rng = StdRng::seed_from_u64(7);
        let mut ceilings = Vec::new();
        for _ in 0..8 {
            let ceiling = backoff.ceiling();
            ceilings.push(ceiling.as_millis());
            assert!(backoff.next_delay(&mut rng) <= ceiling);
        }
        assert_eq!(ceilings, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
    }

    #[test]
    fn full_jitter_spreads_delays_over_the_whole_range() {
        let mut rng = StdRng::seed_from_u64(1);
        let delays: Vec<u128> = (0..1000)
            .map(|_| Backoff::new(Duration::from_millis(1000), Duration::from_secs(1)).next_delay(&mut rng).as_millis())
            .collect();
        assert!(delays.iter().any(|d| *d < 100), "some clients come back almost at once");
        assert!(delays.iter().any(|d| *d > 900), "others wait nearly the whole ceiling");
    }

    #[test]
    fn the_retry_hint_sets_the_base_and_a_success_resets_the_growth() {
        let mut backoff = Backoff::default();
        let mut rng = StdRng::seed_from_u64(3);
        backoff.set_base(Duration::from_millis(2000));
        assert_eq!(backoff.ceiling(), Duration::from_millis(2000));
        backoff.next_delay(&mut rng);
        backoff.next_delay(&mut rng);
        assert_eq!(backoff.ceiling(), Duration::from_millis(8000));
        backoff.reset();
        assert_eq!(backoff.ceiling(), Duration::from_millis(2000));
        backoff.set_base(Duration::from_secs(3600));
        assert_eq!(backoff.ceiling(), Duration::from_secs(30), "a hint never exceeds the cap");
    }
}
