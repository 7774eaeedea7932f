//! Merge rules: three texts (split on NUL bytes) merge within any budget without panicking, and
//! a one-sided edit always merges cleanly.
#![no_main]
use shelf_core::diff::Budget;
use shelf_core::merge::{merge_text, TextMerge};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(4, '\0');
    let (base, ours, theirs) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let budget = parts.next().map_or(u64::MAX, |rest| rest.len() as u64 * 8);
    let outcome = merge_text(base, ours, theirs, &mut Budget(budget));
    if theirs == base {
        assert_eq!(outcome, TextMerge::Clean(ours.to_owned()));
    }
});
