//! Merge rules for edits made against an older version (offline devices, `If-Match`).
//!
//! Deterministic and server-authoritative; each rule is documented in docs/sync-protocol.md and
//! tested here with its mirror image. Nothing is ever silently dropped: where two edits cannot
//! both survive, the server's value stays and the device's value is returned as a conflict.

use crate::diff::{diff_lines, Budget};

/// The outcome of merging one text field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextMerge {
    /// Both edits survive (or only one side changed): the merged text.
    Clean(String),
    /// The edits overlap: the server's text stays; the device's text must be kept as a conflict.
    Conflict,
    /// Finding out would cost more than the budget allowed (texts too large or too different).
    OverBudget,
}

/// Three-way merge of `theirs` (the device's text) into `ours` (the server's current text), both
/// edited from `base`. Line-based: edits to different lines both survive. Both diffs take their
/// work from `budget`; when it runs out the answer is [`TextMerge::OverBudget`].
pub fn merge_text(base: &str, ours: &str, theirs: &str, budget: &mut Budget) -> TextMerge {
    if ours == theirs || theirs == base {
        return TextMerge::Clean(ours.to_owned());
    }
    if ours == base {
        return TextMerge::Clean(theirs.to_owned());
    }
    let base_lines: Vec<&str> = base.split_inclusive('\n').collect();
    let (Some(our_hunks), Some(their_hunks)) = (
        hunks(&base_lines, &ours.split_inclusive('\n').collect::<Vec<_>>(), budget),
        hunks(&base_lines, &theirs.split_inclusive('\n').collect::<Vec<_>>(), budget),
    ) else {
        return TextMerge::OverBudget;
    };
    let mut all: Vec<&Hunk> = our_hunks.iter().chain(their_hunks.iter()).collect();
    all.sort_by_key(|h| (h.start, h.end));
    let mut merged = String::with_capacity(ours.len().max(theirs.len()));
    let mut cursor = 0;
    let mut previous: Option<&Hunk> = None;
    for hunk in all {
        if let Some(prev) = previous {
            if prev.same_change(hunk) {
                continue; // both sides made the identical edit
            }
            if hunk.start < cursor || prev.collides(hunk) {
                return TextMerge::Conflict;
            }
        }
        for line in &base_lines[cursor.min(hunk.start)..hunk.start] {
            merged.push_str(line);
        }
        merged.push_str(&hunk.replacement);
        cursor = cursor.max(hunk.end);
        previous = Some(hunk);
    }
    for line in &base_lines[cursor.min(base_lines.len())..] {
        merged.push_str(line);
    }
    TextMerge::Clean(merged)
}

/// One side's change: base lines `start..end` replaced by `replacement`.
#[derive(Debug)]
struct Hunk {
    start: usize,
    end: usize,
    replacement: String,
}

impl Hunk {
    fn same_change(&self, other: &Hunk) -> bool {
        self.start == other.start && self.end == other.end && self.replacement == other.replacement
    }

    /// Two changes starting at one point, one of them an insertion, cannot be ordered without
    /// guessing. (Overlap with any earlier change is checked by the caller.)
    fn collides(&self, later: &Hunk) -> bool {
        later.start == self.start && (self.start == self.end || later.start == later.end)
    }
}

fn hunks(base: &[&str], edited: &[&str], budget: &mut Budget) -> Option<Vec<Hunk>> {
    let changes = diff_lines(base, edited, budget)?;
    Some(
        changes
            .into_iter()
            .map(|c| Hunk { start: c.old.start, end: c.old.end, replacement: edited[c.new].concat() })
            .collect(),
    )
}

/// Tags merge as a set: what the device added is added, what it removed is removed, and the
/// server's concurrent additions and removals of other tags survive. Order: server's order,
/// then the device's additions.
pub fn merge_tags(base: &[String], ours: &[String], theirs: &[String]) -> Vec<String> {
    let added: Vec<&String> = theirs.iter().filter(|t| !base.contains(t)).collect();
    let removed: Vec<&String> = base.iter().filter(|t| !theirs.contains(t)).collect();
    let mut merged: Vec<String> = ours.iter().filter(|t| !removed.contains(t)).cloned().collect();
    for tag in added {
        if !merged.contains(tag) {
            merged.push(tag.clone());
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merge_text_unbounded(base: &str, ours: &str, theirs: &str) -> TextMerge {
        merge_text(base, ours, theirs, &mut Budget(u64::MAX / 2))
    }

    #[test]
    fn a_merge_over_budget_says_so_instead_of_working_on() {
        let base: String = (0..3000).map(|i| format!("line {i}\n")).collect();
        let ours: String = (0..3000).map(|i| format!("ours {i}\n")).collect();
        let theirs: String = (0..3000).map(|i| format!("theirs {i}\n")).collect();
        assert_eq!(merge_text(&base, &ours, &theirs, &mut Budget(100_000)), TextMerge::OverBudget);
    }

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn edits_to_different_lines_both_survive_either_way_round() {
        let base = "one\ntwo\nthree\n";
        let ours = "ONE\ntwo\nthree\n";
        let theirs = "one\ntwo\nTHREE\n";
        assert_eq!(merge_text_unbounded(base, ours, theirs), TextMerge::Clean("ONE\ntwo\nTHREE\n".into()));
        assert_eq!(merge_text_unbounded(base, theirs, ours), TextMerge::Clean("ONE\ntwo\nTHREE\n".into()));
    }

    #[test]
    fn overlapping_edits_conflict_either_way_round() {
        let base = "one\ntwo\n";
        assert_eq!(merge_text_unbounded(base, "one\nTWO\n", "one\n2\n"), TextMerge::Conflict);
        assert_eq!(merge_text_unbounded(base, "one\n2\n", "one\nTWO\n"), TextMerge::Conflict);
        assert_eq!(merge_text_unbounded("Title", "Server title", "Device title"), TextMerge::Conflict);
    }

    #[test]
    fn one_sided_and_identical_edits_are_clean() {
        assert_eq!(merge_text_unbounded("a", "a", "b"), TextMerge::Clean("b".into()));
        assert_eq!(merge_text_unbounded("a", "b", "a"), TextMerge::Clean("b".into()));
        assert_eq!(merge_text_unbounded("a\nb\n", "a\nX\n", "a\nX\n"), TextMerge::Clean("a\nX\n".into()));
    }

    #[test]
    fn insertions_at_the_same_place_conflict_but_elsewhere_merge() {
        let base = "a\nb\n";
        assert_eq!(merge_text_unbounded(base, "a\nours\nb\n", "a\ntheirs\nb\n"), TextMerge::Conflict);
        assert_eq!(merge_text_unbounded(base, "top\na\nb\n", "a\nb\nbottom\n"), TextMerge::Clean("top\na\nb\nbottom\n".into()));
        assert_eq!(merge_text_unbounded(base, "a\nb\nbottom\n", "top\na\nb\n"), TextMerge::Clean("top\na\nb\nbottom\n".into()));
    }

    #[test]
    fn deletion_and_distant_edit_merge() {
        let base = "1\n2\n3\n4\n";
        assert_eq!(merge_text_unbounded(base, "2\n3\n4\n", "1\n2\n3\nfour\n"), TextMerge::Clean("2\n3\nfour\n".into()));
        assert_eq!(merge_text_unbounded(base, "1\n2\n3\nfour\n", "2\n3\n4\n"), TextMerge::Clean("2\n3\nfour\n".into()));
    }

    #[test]
    fn tags_merge_as_a_set_both_ways() {
        let base = tags(&["a", "b"]);
        // Server added c; device removed b and added d.
        assert_eq!(merge_tags(&base, &tags(&["a", "b", "c"]), &tags(&["a", "d"])), tags(&["a", "c", "d"]));
        // Mirror: server removed b and added d; device added c.
        assert_eq!(merge_tags(&base, &tags(&["a", "d"]), &tags(&["a", "b", "c"])), tags(&["a", "d", "c"]));
        // Add and a concurrent remove of the same tag: the device's add wins only if the base lacked it.
        assert_eq!(merge_tags(&tags(&[]), &tags(&[]), &tags(&["x"])), tags(&["x"]));
    }
}
