//! Waits between tries, with jitter: hosts (or listeners) that failed together must not all
//! try again at the same moment, or the brokers that just came back meet the whole fleet at
//! once.

use std::time::Duration;

/// The share of a wait that jitter may add or take away.
const JITTER: f64 = 0.2;

/// The longest [`jittered`] makes `wait`.
pub fn longest_jittered(wait: Duration) -> Duration {
    // JITTER is a fifth; in whole nanoseconds, so that the figure shown is exact.
    wait + wait / 5
}

/// `wait`, give or take up to a fifth of it, at random.
pub fn jittered(wait: Duration) -> Duration {
    let factor = 1.0 + JITTER * (fastrand::f64() * 2.0 - 1.0);
    wait.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::jittered;

    #[test]
    fn waits_spread_within_a_fifth_of_the_schedule() {
        let wait = Duration::from_millis(1000);
        let waits: Vec<Duration> = (0..200).map(|_| jittered(wait)).collect();
        assert!(waits
            .iter()
            .all(|w| (Duration::from_millis(800)..=Duration::from_millis(1200)).contains(w)));
        // Not in step: 200 draws are not one value, and fall on both sides of the schedule.
        assert!(waits.iter().any(|w| *w < wait) && waits.iter().any(|w| *w > wait));
    }
}
