//! A line diff whose cost is bounded by a deterministic work budget.
//!
//! Myers' algorithm costs O((N+M)·D) time and, to recover the edit script, O(D²) memory, where D
//! is the number of differing lines. Two unrelated 16,000-line texts made one merge take seconds
//! while holding the library writer (issue 9, item 4), so every unit of work — a line compared
//! while following a diagonal, a diagonal visited, a line interned — is charged to a budget, and
//! the diff gives up (`None`) when the budget runs out. Counting work instead of time keeps the
//! outcome identical on every machine and every run.

use std::collections::HashMap;
use std::ops::Range;

/// One region where `old[old]` was replaced by `new[new]` (either range may be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub old: Range<usize>,
    pub new: Range<usize>,
}

/// Work units left; every diff step takes from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget(pub u64);

impl Budget {
    fn take(&mut self, units: u64) -> Option<()> {
        self.0 = self.0.checked_sub(units)?;
        Some(())
    }
}

/// The changes that turn `old` into `new`, or `None` when that costs more than `budget`.
pub fn diff_lines(old: &[&str], new: &[&str], budget: &mut Budget) -> Option<Vec<Change>> {
    let prefix = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let suffix = old[prefix..].iter().rev().zip(new[prefix..].iter().rev()).take_while(|(a, b)| a == b).count();
    let (old_mid, new_mid) = (&old[prefix..old.len() - suffix], &new[prefix..new.len() - suffix]);
    budget.take((old_mid.len() + new_mid.len()) as u64)?;
    let (a, b) = intern(old_mid, new_mid);
    let changes = myers(&a, &b, budget)?;
    Some(
        changes
            .into_iter()
            .map(|c| Change { old: c.old.start + prefix..c.old.end + prefix, new: c.new.start + prefix..c.new.end + prefix })
            .collect(),
    )
}

/// Lines become small integers, so comparing two lines is one integer comparison.
fn intern<'a>(old: &[&'a str], new: &[&'a str]) -> (Vec<u32>, Vec<u32>) {
    let mut ids: HashMap<&'a str, u32> = HashMap::with_capacity(old.len() + new.len());
    let mut id = |line: &'a str| {
        let next = ids.len() as u32;
        *ids.entry(line).or_insert(next)
    };
    let a = old.iter().map(|l| id(l)).collect();
    let b = new.iter().map(|l| id(l)).collect();
    (a, b)
}

/// Greedy forward Myers with a trace of each step's furthest-reaching diagonals.
fn myers(a: &[u32], b: &[u32], budget: &mut Budget) -> Option<Vec<Change>> {
    let (n, m) = (a.len() as i64, b.len() as i64);
    if n == 0 && m == 0 {
        return Some(Vec::new());
    }
    // Step d alone costs 2d+1 units, so the budget also bounds d (and the memory of `v`).
    let reachable = (budget.0 as f64).sqrt() as usize + 1;
    let max = ((n + m) as usize).min(reachable);
    let offset = max as i64 + 1;
    let mut v = vec![0i64; 2 * max + 3];
    // trace[d] holds v[k] for k in -d..=d before step d+1 (indices shifted by d).
    let mut trace: Vec<Vec<i64>> = Vec::new();
    for d in 0..=max as i64 {
        budget.take(2 * d as u64 + 1)?;
        let mut k = -d;
        while k <= d {
            let down = k == -d || (k != d && v[(offset + k - 1) as usize] < v[(offset + k + 1) as usize]);
            let mut x = if down { v[(offset + k + 1) as usize] } else { v[(offset + k - 1) as usize] + 1 };
            let mut y = x - k;
            let start = x;
            while x < n && y < m && a[x as usize] == b[y as usize] {
                x += 1;
                y += 1;
            }
            budget.take((x - start) as u64)?;
            v[(offset + k) as usize] = x;
            if x >= n && y >= m {
                trace.push(v[(offset - d) as usize..=(offset + d) as usize].to_vec());
                return Some(backtrack(&trace, n, m));
            }
            k += 2;
        }
        trace.push(v[(offset - d) as usize..=(offset + d) as usize].to_vec());
    }
    None
}

/// Walks the trace back from (n, m) and groups the non-diagonal moves into changes.
fn backtrack(trace: &[Vec<i64>], n: i64, m: i64) -> Vec<Change> {
    let get = |d: usize, k: i64| trace[d][(k + d as i64) as usize];
    let (mut x, mut y) = (n, m);
    // Edits as (x_before, y_before, x_after, y_after) from the end backwards.
    let mut edits: Vec<(i64, i64, i64, i64)> = Vec::new();
    for d in (1..trace.len()).rev() {
        let k = x - y;
        let d_prev = d - 1;
        let dd = d as i64;
        let down = k == -dd || (k != dd && get(d_prev, k - 1) < get(d_prev, k + 1));
        let prev_k = if down { k + 1 } else { k - 1 };
        let prev_x = get(d_prev, prev_k);
        let prev_y = prev_x - prev_k;
        // The snake after the edit: diagonal moves from the edit's end to (x, y).
        let (edit_x, edit_y) = if down { (prev_x, prev_y + 1) } else { (prev_x + 1, prev_y) };
        edits.push((prev_x, prev_y, edit_x, edit_y));
        x = prev_x;
        y = prev_y;
    }
    edits.reverse();
    let mut changes: Vec<Change> = Vec::new();
    for (x0, y0, x1, y1) in edits {
        let (x0, y0, x1, y1) = (x0 as usize, y0 as usize, x1 as usize, y1 as usize);
        match changes.last_mut() {
            Some(last) if last.old.end == x0 && last.new.end == y0 => {
                last.old.end = x1;
                last.new.end = y1;
            }
            _ => changes.push(Change { old: x0..x1, new: y0..y1 }),
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<&str> {
        text.split_inclusive('\n').collect()
    }

    /// Applies the changes to `old` and checks that the result is `new`.
    fn check(old: &str, new: &str) -> Vec<Change> {
        let (a, b) = (lines(old), lines(new));
        let changes = diff_lines(&a, &b, &mut Budget(1_000_000)).unwrap();
        let mut rebuilt = String::new();
        let mut at = 0;
        for c in &changes {
            rebuilt.push_str(&a[at..c.old.start].concat());
            rebuilt.push_str(&b[c.new.clone()].concat());
            at = c.old.end;
        }
        rebuilt.push_str(&a[at..].concat());
        assert_eq!(rebuilt, new, "changes {changes:?}");
        changes
    }

    #[test]
    fn finds_minimal_changes() {
        assert!(check("a\nb\nc\n", "a\nb\nc\n").is_empty());
        assert_eq!(check("a\nb\nc\n", "a\nB\nc\n"), vec![Change { old: 1..2, new: 1..2 }]);
        assert_eq!(check("a\nc\n", "a\nb\nc\n"), vec![Change { old: 1..1, new: 1..2 }]);
        assert_eq!(check("a\nb\nc\n", "a\nc\n"), vec![Change { old: 1..2, new: 1..1 }]);
        check("", "x\ny\n");
        check("x\ny\n", "");
        check("a\nb\nc\nd\ne\n", "b\nx\nc\ne\nf\n");
        check("1\n2\n3\n4\n5\n6\n", "6\n5\n4\n3\n2\n1\n");
    }

    #[test]
    fn work_is_bounded_and_deterministic() {
        let old: String = (0..4000).map(|i| format!("old {i}\n")).collect();
        let new: String = (0..4000).map(|i| format!("new {i}\n")).collect();
        let (a, b) = (lines(&old), lines(&new));
        // Unrelated texts need D = 8000: about 64 million units, far over this budget.
        assert_eq!(diff_lines(&a, &b, &mut Budget(1_000_000)), None);
        // A small edit in a long text stays cheap: the common prefix and suffix cost nothing.
        let edited = old.replacen("old 2000\n", "changed\n", 1);
        let mut budget = Budget(100);
        assert_eq!(diff_lines(&a, &lines(&edited), &mut budget), Some(vec![Change { old: 2000..2001, new: 2000..2001 }]));
        assert!(budget.0 < 100);
    }
}
