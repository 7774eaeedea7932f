//! tus headers: any `Upload-Metadata` parses to a valid sha256 or is refused.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(header) = std::str::from_utf8(data) {
        if let Ok((sha256, _)) = shelf_server::service::uploads::parse_metadata(Some(header)) {
            assert!(shelf_server::service::uploads::is_sha256(&sha256));
        }
    }
});
