//! Backend-independent paging of the change feed.

use shelf_core::LibraryVersion;

use crate::types::Change;

/// A page cut on a version boundary.
#[derive(Debug, PartialEq)]
pub enum TrimmedPage {
    /// These changes form whole versions; `has_more` says whether rows were left out.
    Page { changes: Vec<Change>, has_more: bool },
    /// The first version alone holds more than `limit` rows: read all rows of this version.
    WholeVersion(LibraryVersion),
}

/// Cuts `rows` (ascending by version, at most `limit + 1`, as read with `LIMIT limit + 1`) so that
/// no version is split across pages: a client that stores `nextSince` never skips half of a
/// mutation's rows.
pub fn trim_to_whole_versions(mut rows: Vec<Change>, limit: usize) -> TrimmedPage {
    if rows.len() <= limit {
        return TrimmedPage::Page { changes: rows, has_more: false };
    }
    let first_left_out = rows[limit].version;
    rows.truncate(limit);
    while rows.last().is_some_and(|c| c.version == first_left_out) {
        rows.pop();
    }
    if rows.is_empty() {
        return TrimmedPage::WholeVersion(first_left_out);
    }
    TrimmedPage::Page { changes: rows, has_more: true }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shelf_core::{ChangeKind, ChangeOp, MaterialId};

    fn change(version: i64) -> Change {
        Change {
            kind: ChangeKind::Material,
            id: MaterialId::new(),
            op: ChangeOp::Delete,
            version: LibraryVersion(version),
            data: None,
        }
    }

    fn versions(page: &TrimmedPage) -> Vec<i64> {
        match page {
            TrimmedPage::Page { changes, .. } => changes.iter().map(|c| c.version.0).collect(),
            TrimmedPage::WholeVersion(v) => vec![-v.0],
        }
    }

    #[test]
    fn short_page_is_complete() {
        let page = trim_to_whole_versions(vec![change(2), change(3)], 5);
        assert_eq!(versions(&page), [2, 3]);
        assert!(matches!(page, TrimmedPage::Page { has_more: false, .. }));
    }

    #[test]
    fn split_version_is_left_for_the_next_page() {
        let rows = vec![change(2), change(3), change(3), change(3)];
        let page = trim_to_whole_versions(rows, 3);
        assert_eq!(versions(&page), [2]);
        assert!(matches!(page, TrimmedPage::Page { has_more: true, .. }));
    }

    #[test]
    fn oversized_version_is_read_whole() {
        let rows = vec![change(4), change(4), change(4)];
        assert_eq!(trim_to_whole_versions(rows, 2), TrimmedPage::WholeVersion(LibraryVersion(4)));
    }
}
