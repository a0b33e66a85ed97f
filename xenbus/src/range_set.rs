//! RANGE_SET (spec §5.15): sets of 64-bit integers kept as sorted, disjoint, inclusive
//! ranges, used for grant references, hole pages and ballooned frames.
//!
//! Decisions: `Count` 0, a negative `Start`, a range that overflows, a `Put` overlapping
//! items already present and a `Get` of items not all present are caller errors
//! (`STATUS_INVALID_PARAMETER`, where the original asserts); an empty set or no range
//! large enough for `Pop` is `STATUS_INSUFFICIENT_RESOURCES`; running out of pool while
//! splitting a range is `STATUS_NO_MEMORY` and leaves the set unchanged.
#![forbid(unsafe_code)]

use alloc::vec::Vec;
use xen_include::status::{
    NtStatus, STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_PARAMETER, STATUS_NO_MEMORY,
};

/// One inclusive range `[start, end]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// First item.
    pub start: u64,
    /// Last item (inclusive).
    pub end: u64,
}

/// A set of integers.
///
/// # Invariants
/// `ranges` is sorted, every range has `start <= end`, and consecutive ranges neither
/// overlap nor touch (`prev.end + 1 < next.start`); `items` is the total item count.
#[derive(Debug, Default)]
pub struct RangeSet {
    ranges: Vec<Range>,
    items: u64,
}

/// `[start, start + count - 1]` as unsigned bounds, or `STATUS_INVALID_PARAMETER`.
fn bounds(start: i64, count: u64) -> Result<(u64, u64), NtStatus> {
    let start = u64::try_from(start).map_err(|_| STATUS_INVALID_PARAMETER)?;
    if count == 0 {
        return Err(STATUS_INVALID_PARAMETER);
    }
    let end = start
        .checked_add(count - 1)
        .filter(|end| *end <= i64::MAX as u64)
        .ok_or(STATUS_INVALID_PARAMETER)?;
    Ok((start, end))
}

impl RangeSet {
    /// An empty set.
    pub const fn new() -> Self {
        Self {
            ranges: Vec::new(),
            items: 0,
        }
    }

    /// Number of items in the set.
    pub fn items(&self) -> u64 {
        self.items
    }

    /// Number of disjoint ranges.
    pub fn range_count(&self) -> usize {
        self.ranges.len()
    }

    /// True when the set holds no item.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The ranges, lowest first.
    pub fn ranges(&self) -> &[Range] {
        &self.ranges
    }

    /// True when `item` is in the set.
    pub fn contains(&self, item: u64) -> bool {
        let i = self.ranges.partition_point(|r| r.end < item);
        self.ranges.get(i).is_some_and(|r| r.start <= item)
    }

    /// Add `count` items from `start`, merging with touching neighbours.
    pub fn put(&mut self, start: i64, count: u64) -> Result<(), NtStatus> {
        let (start, end) = bounds(start, count)?;
        // First range that ends at or after `start - 1` (could merge or lie after).
        let i = self
            .ranges
            .partition_point(|r| r.end.saturating_add(1) < start);
        if let Some(next) = self.ranges.get(i) {
            if next.start <= end && start <= next.end {
                return Err(STATUS_INVALID_PARAMETER);
            }
        }
        let touches_prev = self
            .ranges
            .get(i)
            .is_some_and(|r| r.end.checked_add(1) == Some(start));
        let j = if touches_prev { i + 1 } else { i };
        let touches_next = self
            .ranges
            .get(j)
            .is_some_and(|r| end.checked_add(1) == Some(r.start));
        if let Some(next) = self.ranges.get(j) {
            if next.start <= end {
                return Err(STATUS_INVALID_PARAMETER);
            }
        }
        match (touches_prev, touches_next) {
            (true, true) => {
                let next_end = self.ranges.get(j).map(|r| r.end).unwrap_or(end);
                if let Some(prev) = self.ranges.get_mut(i) {
                    prev.end = next_end;
                }
                self.ranges.remove(j);
            }
            (true, false) => {
                if let Some(prev) = self.ranges.get_mut(i) {
                    prev.end = end;
                }
            }
            (false, true) => {
                if let Some(next) = self.ranges.get_mut(j) {
                    next.start = start;
                }
            }
            (false, false) => {
                self.ranges.try_reserve(1).map_err(|_| STATUS_NO_MEMORY)?;
                self.ranges.insert(i, Range { start, end });
            }
        }
        self.items += count;
        Ok(())
    }

    /// Remove `count` consecutive items from the start of the lowest range that holds
    /// that many, returning the first item.
    pub fn pop(&mut self, count: u64) -> Result<i64, NtStatus> {
        if count == 0 {
            return Err(STATUS_INVALID_PARAMETER);
        }
        let i = self
            .ranges
            .iter()
            .position(|r| r.end - r.start >= count - 1)
            .ok_or(STATUS_INSUFFICIENT_RESOURCES)?;
        let range = self
            .ranges
            .get_mut(i)
            .ok_or(STATUS_INSUFFICIENT_RESOURCES)?;
        let first = range.start;
        if range.end - range.start == count - 1 {
            self.ranges.remove(i);
        } else {
            range.start += count;
        }
        self.items -= count;
        // Items are bounded by i64::MAX on entry (see `bounds`).
        i64::try_from(first).map_err(|_| STATUS_INVALID_PARAMETER)
    }

    /// Remove exactly the items `[start, start + count - 1]`, all of which must be present.
    pub fn get(&mut self, start: i64, count: u64) -> Result<(), NtStatus> {
        let (start, end) = bounds(start, count)?;
        let i = self.ranges.partition_point(|r| r.end < start);
        let range = *self.ranges.get(i).ok_or(STATUS_INVALID_PARAMETER)?;
        if range.start > start || range.end < end {
            return Err(STATUS_INVALID_PARAMETER);
        }
        match (range.start == start, range.end == end) {
            (true, true) => {
                self.ranges.remove(i);
            }
            (true, false) => {
                if let Some(r) = self.ranges.get_mut(i) {
                    r.start = end + 1;
                }
            }
            (false, true) => {
                if let Some(r) = self.ranges.get_mut(i) {
                    r.end = start - 1;
                }
            }
            (false, false) => {
                self.ranges.try_reserve(1).map_err(|_| STATUS_NO_MEMORY)?;
                if let Some(r) = self.ranges.get_mut(i) {
                    r.end = start - 1;
                }
                self.ranges.insert(
                    i + 1,
                    Range {
                        start: end + 1,
                        end: range.end,
                    },
                );
            }
        }
        self.items -= count;
        Ok(())
    }

    /// Check the type invariant (used by tests and the audit in debug output).
    pub fn audit(&self) -> bool {
        let ordered = self
            .ranges
            .windows(2)
            .all(|w| matches!(w, [a, b] if a.end.saturating_add(1) < b.start));
        let sane = self.ranges.iter().all(|r| r.start <= r.end);
        let total: u64 = self.ranges.iter().map(|r| r.end - r.start + 1).sum();
        ordered && sane && total == self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn r(start: u64, end: u64) -> Range {
        Range { start, end }
    }

    #[test]
    fn put_merges_with_both_neighbours() {
        let mut s = RangeSet::new();
        s.put(0, 10).unwrap();
        s.put(20, 10).unwrap();
        assert_eq!(s.ranges(), &[r(0, 9), r(20, 29)]);
        s.put(10, 10).unwrap();
        assert_eq!(s.ranges(), &[r(0, 29)]);
        assert_eq!(s.items(), 30);
        s.put(31, 1).unwrap();
        s.put(30, 1).unwrap();
        assert_eq!(s.ranges(), &[r(0, 31)]);
        assert!(s.audit());
    }

    #[test]
    fn pop_is_first_fit_from_the_lowest_range() {
        let mut s = RangeSet::new();
        s.put(100, 2).unwrap();
        s.put(200, 8).unwrap();
        s.put(300, 4).unwrap();
        assert_eq!(s.pop(4), Ok(200));
        assert_eq!(s.ranges(), &[r(100, 101), r(204, 207), r(300, 303)]);
        assert_eq!(s.pop(1), Ok(100));
        assert_eq!(s.pop(1), Ok(101));
        assert_eq!(s.pop(4), Ok(204));
        assert_eq!(s.pop(5), Err(STATUS_INSUFFICIENT_RESOURCES));
        assert_eq!(s.pop(4), Ok(300));
        assert!(s.is_empty());
        assert_eq!(s.pop(1), Err(STATUS_INSUFFICIENT_RESOURCES));
    }

    #[test]
    fn get_splits_and_trims() {
        let mut s = RangeSet::new();
        s.put(0, 100).unwrap();
        s.get(10, 5).unwrap();
        assert_eq!(s.ranges(), &[r(0, 9), r(15, 99)]);
        s.get(0, 1).unwrap();
        s.get(99, 1).unwrap();
        assert_eq!(s.ranges(), &[r(1, 9), r(15, 98)]);
        assert_eq!(s.get(8, 3), Err(STATUS_INVALID_PARAMETER));
        assert_eq!(s.get(200, 1), Err(STATUS_INVALID_PARAMETER));
        s.get(1, 9).unwrap();
        assert_eq!(s.ranges(), &[r(15, 98)]);
        assert_eq!(s.items(), 84);
    }

    #[test]
    fn caller_errors_are_rejected_without_change() {
        let mut s = RangeSet::new();
        assert_eq!(s.put(0, 0), Err(STATUS_INVALID_PARAMETER));
        assert_eq!(s.pop(0), Err(STATUS_INVALID_PARAMETER));
        assert_eq!(s.get(0, 0), Err(STATUS_INVALID_PARAMETER));
        assert_eq!(s.put(-1, 1), Err(STATUS_INVALID_PARAMETER));
        assert_eq!(s.put(i64::MAX, 2), Err(STATUS_INVALID_PARAMETER));
        s.put(i64::MAX, 1).unwrap();
        s.put(10, 10).unwrap();
        assert_eq!(s.put(5, 6), Err(STATUS_INVALID_PARAMETER));
        assert_eq!(s.put(19, 1), Err(STATUS_INVALID_PARAMETER));
        assert_eq!(s.put(0, 100), Err(STATUS_INVALID_PARAMETER));
        assert_eq!(
            s.ranges(),
            &[r(10, 19), r(i64::MAX as u64, i64::MAX as u64)]
        );
        assert_eq!(s.items(), 11);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Put(u8, u8),
        Pop(u8),
        Get(u8, u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (any::<u8>(), 1..8u8).prop_map(|(s, c)| Op::Put(s, c)),
            (1..8u8).prop_map(Op::Pop),
            (any::<u8>(), 1..8u8).prop_map(|(s, c)| Op::Get(s, c)),
        ]
    }

    proptest! {
        #[test]
        fn behaves_like_a_set_of_integers(ops in proptest::collection::vec(op(), 1..200)) {
            let mut s = RangeSet::new();
            let mut model = BTreeSet::new();
            for op in ops {
                match op {
                    Op::Put(start, count) => {
                        let items: Vec<u64> = (start as u64..start as u64 + count as u64).collect();
                        let free = items.iter().all(|i| !model.contains(i));
                        prop_assert_eq!(s.put(start as i64, count as u64).is_ok(), free);
                        if free { model.extend(items); }
                    }
                    Op::Pop(count) => {
                        let count = count as u64;
                        let expected = model.iter().copied().find(|&first| {
                            (first..first + count).all(|i| model.contains(&i))
                                && (first == 0 || !model.contains(&(first - 1)))
                        });
                        // First fit over maximal runs, lowest first.
                        match (s.pop(count), expected) {
                            (Ok(first), Some(e)) => {
                                prop_assert_eq!(first as u64, e);
                                for i in e..e + count { model.remove(&i); }
                            }
                            (Err(st), None) => prop_assert_eq!(st, STATUS_INSUFFICIENT_RESOURCES),
                            (got, want) => prop_assert!(false, "{:?} vs {:?}", got, want),
                        }
                    }
                    Op::Get(start, count) => {
                        let items: Vec<u64> = (start as u64..start as u64 + count as u64).collect();
                        let present = items.iter().all(|i| model.contains(i));
                        prop_assert_eq!(s.get(start as i64, count as u64).is_ok(), present);
                        if present { for i in items { model.remove(&i); } }
                    }
                }
                prop_assert!(s.audit());
                prop_assert_eq!(s.items(), model.len() as u64);
            }
            for i in 0..300u64 { prop_assert_eq!(s.contains(i), model.contains(&i)); }
        }
    }
}
