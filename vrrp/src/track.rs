//! Tracked check results -> effective priority, with keepalived's weight
//! semantics (`track_script` / `track_interface` `weight`). Pure: no I/O.
//!
//! - weight > 0: added to the priority while the check is **up**;
//! - weight < 0: added (i.e. subtracted) while the check is **down**;
//! - weight = 0: the instance goes to FAULT while the check is down.
//!
//! The result is clamped to 1..=254, so a track can never make a router an
//! address owner nor make it advertise priority 0 (which means "resigning").
//! An address owner (base 255) keeps 255 whatever the weights say (keepalived
//! ignores weights on owners; our config refuses tracks on owners anyway), but
//! a down weight-0 track still puts it in FAULT.

/// Lowest priority a tracked router can fall to (0 is reserved for resigning).
pub const MIN_TRACKED_PRIORITY: u8 = 1;
/// Highest priority a tracked router can reach (255 is the address owner).
pub const MAX_TRACKED_PRIORITY: u8 = 254;

/// The priority to advertise given the configured `base` and the current
/// state of each track as `(weight, up)`. `None` means FAULT: some weight-0
/// track is down.
pub fn effective_priority(base: u8, tracks: &[(i32, bool)]) -> Option<u8> {
    if tracks.iter().any(|&(weight, up)| weight == 0 && !up) {
        return None;
    }
    if base == u8::MAX {
        return Some(u8::MAX);
    }
    let delta: i64 = tracks
        .iter()
        .map(|&(weight, up)| match (weight > 0, weight < 0, up) {
            (true, _, true) | (_, true, false) => i64::from(weight),
            _ => 0,
        })
        .sum();
    let p = (i64::from(base) + delta).clamp(
        i64::from(MIN_TRACKED_PRIORITY),
        i64::from(MAX_TRACKED_PRIORITY),
    );
    // The clamp above keeps p inside u8 range.
    Some(u8::try_from(p).unwrap_or(MAX_TRACKED_PRIORITY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_tracks_is_base() {
        assert_eq!(effective_priority(100, &[]), Some(100));
        assert_eq!(effective_priority(1, &[]), Some(1));
        assert_eq!(effective_priority(254, &[]), Some(254));
    }

    #[test]
    fn negative_weight_applies_while_down() {
        assert_eq!(effective_priority(100, &[(-30, true)]), Some(100));
        assert_eq!(effective_priority(100, &[(-30, false)]), Some(70));
        assert_eq!(
            effective_priority(100, &[(-30, false), (-20, false)]),
            Some(50)
        );
        assert_eq!(
            effective_priority(100, &[(-30, false), (-20, true)]),
            Some(70)
        );
    }

    #[test]
    fn positive_weight_applies_while_up() {
        assert_eq!(effective_priority(100, &[(20, true)]), Some(120));
        assert_eq!(effective_priority(100, &[(20, false)]), Some(100));
        assert_eq!(
            effective_priority(100, &[(20, true), (-50, false)]),
            Some(70)
        );
    }

    #[test]
    fn clamped_to_1_254() {
        assert_eq!(effective_priority(100, &[(-200, false)]), Some(1));
        assert_eq!(effective_priority(100, &[(200, true)]), Some(254));
        assert_eq!(effective_priority(254, &[(1, true)]), Some(254));
        assert_eq!(
            effective_priority(100, &[(i32::MIN, false), (i32::MIN, false)]),
            Some(1)
        );
        assert_eq!(
            effective_priority(100, &[(i32::MAX, true), (i32::MAX, true)]),
            Some(254)
        );
    }

    #[test]
    fn weight_zero_down_is_fault() {
        assert_eq!(effective_priority(100, &[(0, true)]), Some(100));
        assert_eq!(effective_priority(100, &[(0, false)]), None);
        assert_eq!(effective_priority(100, &[(50, true), (0, false)]), None);
        assert_eq!(effective_priority(255, &[(0, false)]), None);
    }

    #[test]
    fn owner_is_never_changed() {
        assert_eq!(effective_priority(255, &[(-30, false)]), Some(255));
        assert_eq!(effective_priority(255, &[(30, true)]), Some(255));
        assert_eq!(effective_priority(255, &[(0, true)]), Some(255));
    }
}
