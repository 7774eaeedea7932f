//! Request parsing: any body given to `POST /api/library/mutations` parses or is refused.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _parsed = serde_json::from_slice::<shelf_api::MutationBatchRequest>(data);
});
