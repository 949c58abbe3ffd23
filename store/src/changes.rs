//! The change journal (`mlc_changes`, docs/storage.md "Change journal"): every write that
//! stores rows, and every prune that deletes some, records in its own transaction which event
//! times of which component changed. Readers (`mlc serve`'s pane cache, docs/evaluation.md#panes)
//! ask for the entries after the last one they saw, so a row stored by any process or replica
//! is noticed, late rows included.

/// The widths (seconds) a write's times are rounded to before they are recorded, narrowest
/// first: the narrowest that records at most [`MAX_RANGES`] ranges is taken (then doubling
/// past the last). They are the pane widths readers use (docs/evaluation.md#panes), so a
/// range covers whole panes; a reader's pane overlapping a recorded range is brought up to
/// date, so a coarser range only costs work.
const BUCKETS_SECS: [i64; 7] = [60, 300, 900, 3_600, 21_600, 86_400, 604_800];

/// The most ranges one write records.
pub(crate) const MAX_RANGES: usize = 1024;

/// How long entries are kept (`Store::trim_changes` from `mlc serve`'s maintenance): a reader
/// that last looked longer ago than this finds entries gone and forgets everything it cached.
pub const CHANGES_RETENTION_US: i64 = 2 * 86_400 * 1_000_000;

/// One entry: rows of `component` with `from_us <= time < to_us` may have been stored or
/// deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub component: String,
    pub from_us: i64,
    pub to_us: i64,
    /// When the entry is a write of which the store knows the rows' numbers (SQLite files):
    /// the first and last, every row between them stored by that write
    /// ([`crate::Store::rows_by_rowid`] reads them). `None`: rows may also have been deleted,
    /// or which rows is unknown.
    pub rowids: Option<(i64, i64)>,
}

/// The entries after a reader's last one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeLog {
    /// The last entry's number: what the reader passes next time (0 for an empty journal).
    pub last: i64,
    /// False when entries after the reader's last one were trimmed (or the reader had none):
    /// the reader must then assume that anything changed.
    pub complete: bool,
    pub changes: Vec<Change>,
}

/// The ranges of whole buckets that hold `times`, adjacent buckets joined, in time order; at
/// most [`MAX_RANGES`].
pub(crate) fn time_ranges(times: impl Iterator<Item = i64>) -> Vec<(i64, i64)> {
    let unit = BUCKETS_SECS[0] * 1_000_000;
    let mut buckets: Vec<i64> = Vec::new();
    for t in times {
        let b = t.div_euclid(unit);
        // Rows mostly come in time order: skip the bucket just pushed.
        if buckets.last() != Some(&b) {
            buckets.push(b);
        }
    }
    buckets.sort_unstable();
    buckets.dedup();
    let widths = BUCKETS_SECS
        .iter()
        .map(|w| w / BUCKETS_SECS[0])
        .chain(std::iter::successors(
            Some(2 * 604_800 / 60i64),
            |w: &i64| w.checked_mul(2),
        ));
    for width in widths {
        let mut ranges: Vec<(i64, i64)> = Vec::new();
        for &b in &buckets {
            let b = b.div_euclid(width);
            match ranges.last_mut() {
                Some((_, hi)) if *hi >= b => *hi = b + 1,
                _ => ranges.push((b, b + 1)),
            }
        }
        if ranges.len() <= MAX_RANGES {
            let unit = unit.saturating_mul(width);
            return ranges
                .into_iter()
                .map(|(lo, hi)| (lo.saturating_mul(unit), hi.saturating_mul(unit)))
                .collect();
        }
    }
    vec![(i64::MIN, i64::MAX)]
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: i64 = 60_000_000;
    const H: i64 = 60 * M;

    #[test]
    fn adjacent_minutes_join_and_gaps_stay() {
        let times = [5 * M + 1, 3 * M, 3 * M + 7, 4 * M + 9, 9 * M, -1];
        assert_eq!(
            time_ranges(times.into_iter()),
            vec![(-M, 0), (3 * M, 6 * M), (9 * M, 10 * M)]
        );
        assert!(time_ranges(std::iter::empty()).is_empty());
    }

    #[test]
    fn many_scattered_times_widen_the_buckets_to_pane_widths_but_cover_every_time() {
        let times: Vec<i64> = (0..5000).map(|i| i * 3 * H + 17).collect();
        let ranges = time_ranges(times.iter().copied());
        assert!(ranges.len() <= MAX_RANGES, "{}", ranges.len());
        // Three-hourly times over 625 days fit 1024 ranges only as days.
        assert!(
            ranges
                .iter()
                .all(|(lo, hi)| lo % (24 * H) == 0 && hi % (24 * H) == 0)
        );
        for t in &times {
            assert!(ranges.iter().any(|(lo, hi)| lo <= t && t < hi), "{t}");
        }
        assert!(ranges.windows(2).all(|w| w[0].1 < w[1].0));
    }
}
