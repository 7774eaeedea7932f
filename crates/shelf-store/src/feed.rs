//! Backend-independent paging of the change feed.
//!
//! A page holds whole versions (a client that stores `nextSince` never skips half of a
//! mutation's rows), at most `limit` rows and about `max_bytes` of entity data — except that the
//! first version is always returned whole, however large, so every page makes progress.
//! Backends first read each candidate row's version and size (cheap columns only), let
//! [`page_until`] choose the last version, then read the rows up to it. PostgreSQL applies the
//! same rules in SQL, in the statement that reads the rows (one round trip, ADR 0012).

use shelf_core::LibraryVersion;

/// The last version a page includes, from the candidate rows' `(version, bytes)` in feed order
/// (read with `LIMIT limit + 1`). `None` when there are no rows.
pub fn page_until(sizes: &[(LibraryVersion, u64)], limit: usize, max_bytes: u64) -> Option<LibraryVersion> {
    let first = sizes.first()?.0;
    let (mut rows, mut bytes, mut until) = (0usize, 0u64, first);
    let mut i = 0;
    while i < sizes.len() {
        let version = sizes[i].0;
        let group = sizes[i..].iter().take_while(|(v, _)| *v == version).count();
        let group_bytes: u64 = sizes[i..i + group].iter().map(|(_, b)| b).sum();
        let whole_version_seen = i + group < sizes.len() || sizes.len() <= limit;
        let fits = rows + group <= limit && bytes + group_bytes <= max_bytes && whole_version_seen;
        if version != first && !fits {
            break;
        }
        rows += group;
        bytes += group_bytes;
        until = version;
        i += group;
    }
    Some(until)
}

/// Whether rows after `until` exist, when the candidate rows tell: a candidate beyond `until`
/// says yes; fewer candidates than `limit + 1` say no; otherwise the backend must look.
pub fn known_more_after(sizes: &[(LibraryVersion, u64)], until: LibraryVersion, limit: usize) -> Option<bool> {
    if sizes.iter().any(|(v, _)| *v > until) {
        Some(true)
    } else if sizes.len() <= limit {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(list: &[(i64, u64)]) -> Vec<(LibraryVersion, u64)> {
        list.iter().map(|(v, b)| (LibraryVersion(*v), *b)).collect()
    }

    #[test]
    fn a_short_feed_is_one_page() {
        let sizes = rows(&[(2, 10), (3, 10)]);
        assert_eq!(page_until(&sizes, 5, 1000), Some(LibraryVersion(3)));
        assert_eq!(known_more_after(&sizes, LibraryVersion(3), 5), Some(false));
        assert_eq!(page_until(&[], 5, 1000), None);
    }

    #[test]
    fn a_version_is_never_split_by_the_row_limit() {
        let sizes = rows(&[(2, 1), (3, 1), (3, 1), (3, 1)]);
        assert_eq!(page_until(&sizes, 3, 1000), Some(LibraryVersion(2)));
        assert_eq!(known_more_after(&sizes, LibraryVersion(2), 3), Some(true));
        // The first version alone exceeds the limit: it is read whole; more may follow.
        let big = rows(&[(4, 1), (4, 1), (4, 1)]);
        assert_eq!(page_until(&big, 2, 1000), Some(LibraryVersion(4)));
        assert_eq!(known_more_after(&big, LibraryVersion(4), 2), None);
    }

    #[test]
    fn a_page_stops_at_the_byte_budget_but_holds_at_least_one_version() {
        let sizes = rows(&[(2, 600), (3, 600), (4, 600)]);
        assert_eq!(page_until(&sizes, 10, 1000), Some(LibraryVersion(2)));
        assert_eq!(page_until(&sizes, 10, 1200), Some(LibraryVersion(3)));
        assert_eq!(page_until(&rows(&[(2, 5000)]), 10, 1000), Some(LibraryVersion(2)), "one oversized version still goes");
    }
}
