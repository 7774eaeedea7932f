//! Property tests of what parses untrusted input and of the merge rules: the stable fallback of
//! the cargo-fuzz targets in `fuzz/` (which need a nightly toolchain; `scripts/fuzz` runs them).
//! Arbitrary input never panics; the merge rules keep their documented guarantees.

use proptest::prelude::*;
use shelf_api::MutationBatchRequest;
use shelf_core::diff::Budget;
use shelf_core::merge::{merge_tags, merge_text, TextMerge};
use shelf_server::service::uploads::parse_metadata;

/// Short texts over few distinct lines, so edits collide often.
fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["a\n", "b\n", "c\n", "d\n", "e", "\n", "ä\n"]), 0..12).prop_map(|lines| lines.concat())
}

fn tags() -> impl Strategy<Value = Vec<String>> {
    prop::collection::btree_set("[a-e]", 0..5).prop_map(|set| set.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn merging_never_panics_and_one_sided_edits_always_merge(base in text(), ours in text(), theirs in text(), budget in 0u64..400) {
        let outcome = merge_text(&base, &ours, &theirs, &mut Budget(budget));
        if theirs == base || ours == theirs {
            prop_assert_eq!(outcome, TextMerge::Clean(ours.clone()));
        } else if ours == base {
            prop_assert_eq!(outcome, TextMerge::Clean(theirs.clone()));
        }
    }

    #[test]
    fn conflicts_do_not_depend_on_which_side_is_the_server(base in text(), ours in text(), theirs in text()) {
        // With an ample budget, swapping the sides never turns a clean merge into a conflict.
        let one = merge_text(&base, &ours, &theirs, &mut Budget(u64::MAX));
        let other = merge_text(&base, &theirs, &ours, &mut Budget(u64::MAX));
        prop_assert_ne!(&one, &TextMerge::OverBudget);
        prop_assert_eq!(matches!(one, TextMerge::Conflict), matches!(other, TextMerge::Conflict));
    }

    #[test]
    fn tag_merges_keep_the_devices_additions_and_removals(base in tags(), ours in tags(), theirs in tags()) {
        let merged = merge_tags(&base, &ours, &theirs);
        for added in theirs.iter().filter(|t| !base.contains(t)) {
            prop_assert!(merged.contains(added));
        }
        for removed in base.iter().filter(|t| !theirs.contains(t)) {
            prop_assert!(!merged.contains(removed));
        }
        for kept in ours.iter().filter(|t| !base.contains(t) || theirs.contains(t)) {
            prop_assert!(merged.contains(kept), "the server's tag {kept} survives");
        }
        let mut unique = merged.clone();
        unique.dedup();
        prop_assert_eq!(unique.len(), merged.len());
    }

    #[test]
    fn tus_metadata_of_any_shape_is_parsed_or_refused(header in ".{0,200}") {
        if let Ok((sha256, _)) = parse_metadata(Some(&header)) {
            prop_assert!(sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }

    #[test]
    fn any_mutation_batch_body_is_parsed_or_refused(body in ".{0,300}") {
        // The property is the absence of a panic; a successful parse is fine too.
        let _parsed = serde_json::from_str::<MutationBatchRequest>(&body);
    }

    #[test]
    fn near_valid_mutation_batches_are_parsed_or_refused(kind in prop::sample::select(vec!["material.create", "material.update", "progress.set", "tags.add", "conflict.resolve", "attachment.add", "x"]),
        id in prop::sample::select(vec!["\"0192f0a8-7e2c-7b3a-9c1d-000000000001\"", "1", "null", "\"\""]),
        number in prop::sample::select(vec!["1", "-5", "1e3", "2.5", "9223372036854775808", "\"1\""]),
        data in prop::sample::select(vec!["{}", "{\"title\":\"t\"}", "{\"tags\":[\"a\",1]}", "{\"studySecondsDelta\":1e400}", "null", "[]"])) {
        let body = format!("{{\"protocolVersion\":1,\"mutations\":[{{\"type\":\"{kind}\",\"mutationId\":{number},\"id\":{id},\"baseVersion\":{number},\"data\":{data}}}]}}");
        let _parsed = serde_json::from_str::<MutationBatchRequest>(&body);
    }
}
