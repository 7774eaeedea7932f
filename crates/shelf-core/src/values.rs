//! Validated values. Each `parse` is the only way in, so code past the edge never re-checks.

use std::collections::HashSet;

use serde::Serialize;

/// Why an input was refused, naming the field so clients can point at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: &'static str,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self { field, message: message.into() }
    }
}

/// NUL cannot be stored in PostgreSQL text and has no place in study text; refusing it at the
/// edge keeps both backends accepting exactly the same inputs.
fn reject_nul(field: &'static str, raw: &str) -> Result<(), ValidationError> {
    if raw.contains('\0') {
        return Err(ValidationError::new(field, "must not contain NUL (U+0000) characters"));
    }
    Ok(())
}

/// Refuses text that cannot fit `max_chars` characters before any work that grows with its
/// length: a character takes at most 4 bytes of UTF-8, so more bytes than `4 × max_chars` can
/// never be valid. Then NUL, then the exact character count, all on bounded input.
fn bounded_chars<'a>(field: &'static str, raw: &'a str, max_chars: usize, too_long: &str) -> Result<&'a str, ValidationError> {
    if raw.len() > max_chars * 4 {
        return Err(ValidationError::new(field, too_long));
    }
    reject_nul(field, raw)?;
    if raw.chars().count() > max_chars {
        return Err(ValidationError::new(field, too_long));
    }
    Ok(raw)
}

/// A lower-cased e-mail address of a plausible shape (`local@domain.tld`, ≤ 254 chars).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let invalid = || ValidationError::new("email", "must be an e-mail address like name@example.com");
        // Lower-casing can grow a string; anything this long is refused before it is copied.
        if raw.len() > Self::MAX_LEN * 4 {
            return Err(invalid());
        }
        reject_nul("email", raw)?;
        let email = raw.trim().to_lowercase();
        if email.is_empty() || email.len() > Self::MAX_LEN || email.chars().any(char::is_whitespace) {
            return Err(invalid());
        }
        let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
        let domain_ok = !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..");
        if local.is_empty() || !domain_ok {
            return Err(invalid());
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password of 8 to 1024 characters. The upper bound keeps hashing cost bounded.
#[derive(Clone)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 1024;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        bounded_chars("password", raw, Self::MAX_CHARS, "must be at most 1024 characters")?;
        if raw.chars().count() < Self::MIN_CHARS {
            return Err(ValidationError::new("password", "must be at least 8 characters"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A device's display name, 1 to 100 characters; blank names become "Unnamed device".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceName(String);

impl DeviceName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: Option<&str>) -> Result<Self, ValidationError> {
        let raw = raw.map(|r| bounded_chars("deviceName", r, Self::MAX_CHARS, "must be at most 100 characters")).transpose()?;
        let name = raw.map(str::trim).filter(|s| !s.is_empty()).unwrap_or("Unnamed device");
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A material title: 1 to 500 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaterialTitle(String);

impl MaterialTitle {
    pub const MAX_CHARS: usize = 500;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        // The raw text is bounded, as the API schema's maxLength is; then trimmed.
        let title = bounded_chars("title", raw, Self::MAX_CHARS, "must be at most 500 characters")?.trim();
        if title.is_empty() {
            return Err(ValidationError::new("title", "must not be empty"));
        }
        Ok(Self(title.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A material body: any text up to 1 MiB of UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MaterialBody(String);

impl MaterialBody {
    pub const MAX_BYTES: usize = 1024 * 1024;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw.len() > Self::MAX_BYTES {
            return Err(ValidationError::new("body", "must be at most 1 MiB (1048576 bytes of UTF-8)"));
        }
        reject_nul("body", raw)?;
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A set of up to 50 tags, each 1 to 64 characters, trimmed, de-duplicated, order kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tags(Vec<String>);

impl Tags {
    pub const MAX_TAGS: usize = 50;
    pub const MAX_TAG_CHARS: usize = 64;

    /// The list's length is checked before anything else, so a body of 40,000 tags costs one
    /// comparison; de-duplication is a hash set, linear in the (at most 50) entries.
    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<Self, ValidationError> {
        if raw.len() > Self::MAX_TAGS {
            return Err(ValidationError::new("tags", "at most 50 tags"));
        }
        let mut seen: HashSet<&str> = HashSet::with_capacity(raw.len());
        let mut tags: Vec<String> = Vec::with_capacity(raw.len());
        for tag in raw {
            let tag = bounded_chars("tags", tag.as_ref(), Self::MAX_TAG_CHARS, "a tag must be at most 64 characters")?.trim();
            if tag.is_empty() {
                return Err(ValidationError::new("tags", "a tag must not be empty"));
            }
            if seen.insert(tag) {
                tags.push(tag.to_owned());
            }
        }
        Ok(Self(tags))
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<String> {
        self.0
    }
}

/// Study position inside a material (a page, a timestamp, a CFI…): at most 256 characters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Position(String);

impl Position {
    pub const MAX_CHARS: usize = 256;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let position = bounded_chars("position", raw, Self::MAX_CHARS, "must be at most 256 characters")?;
        Ok(Self(position.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A completion percentage in 0–100 (finite).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct PercentComplete(f64);

impl PercentComplete {
    pub fn parse(raw: f64) -> Result<Self, ValidationError> {
        if !raw.is_finite() || !(0.0..=100.0).contains(&raw) {
            return Err(ValidationError::new("percentComplete", "must be a number from 0 to 100"));
        }
        Ok(Self(raw))
    }

    pub fn value(self) -> f64 {
        self.0
    }
}

/// A SHA-256 digest as 64 lower-case hex digits: the name of a blob.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sha256Hex(String);

impl Sha256Hex {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let valid = raw.len() == 64 && raw.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !valid {
            return Err(ValidationError::new("sha256", "must be 64 lower-case hex digits"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An attachment's file name: 1 to 255 characters, no path separators or NUL, not blank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName(String);

impl FileName {
    pub const MAX_CHARS: usize = 255;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let name = raw.trim();
        if name.is_empty() || raw.chars().count() > Self::MAX_CHARS || name.contains(['/', '\\', '\0']) {
            return Err(ValidationError::new("filename", "1 to 255 characters, no path separators"));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A MIME type such as `application/pdf` (`type/subtype`, printable ASCII, ≤ 255 characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType(String);

impl ContentType {
    pub const MAX_CHARS: usize = 255;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let valid = raw.len() <= Self::MAX_CHARS
            && raw.split_once('/').is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
            && raw.chars().all(|c| c.is_ascii_graphic() || c == ' ');
        if !valid {
            return Err(ValidationError::new("contentType", "must be a MIME type such as application/pdf"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Drops sub-microsecond precision, the finest both databases keep, so a timestamp reads back
/// exactly as it was written.
pub fn truncate_to_micros(at: time::OffsetDateTime) -> time::OffsetDateTime {
    let nanos = at.nanosecond();
    at.replace_nanosecond(nanos - nanos % 1_000).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_normalised_and_checked() {
        assert_eq!(Email::parse(" Ada@Example.COM ").unwrap().as_str(), "ada@example.com");
        for bad in ["", "ada", "ada@", "@example.com", "ada@example", "a b@example.com", "a@b@c.com", "a@.com"] {
            assert!(Email::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn password_needs_eight_chars() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert_eq!(format!("{:?}", Password::parse("secretpassword").unwrap()), "Password(<redacted>)");
    }

    #[test]
    fn title_bounds() {
        assert!(MaterialTitle::parse("   ").is_err());
        assert!(MaterialTitle::parse(&"é".repeat(500)).is_ok());
        assert!(MaterialTitle::parse(&"é".repeat(501)).is_err());
    }

    #[test]
    fn body_is_limited_in_bytes() {
        assert!(MaterialBody::parse(&"a".repeat(MaterialBody::MAX_BYTES)).is_ok());
        assert!(MaterialBody::parse(&"a".repeat(MaterialBody::MAX_BYTES + 1)).is_err());
    }

    #[test]
    fn tags_are_deduplicated_and_bounded() {
        let tags = Tags::parse(&["a", " b ", "a"]).unwrap();
        assert_eq!(tags.as_slice(), ["a", "b"]);
        assert!(Tags::parse(&[""]).is_err());
        assert!(Tags::parse(&["x".repeat(65)]).is_err());
        let many: Vec<String> = (0..51).map(|i| i.to_string()).collect();
        assert!(Tags::parse(&many).is_err());
    }

    /// MAT1: the count is checked before any per-tag work. 40,000 entries (the issue 9 probe)
    /// are refused for their number, not for the invalid first entry a per-tag pass would find.
    #[test]
    fn mat1_tag_count_is_checked_before_any_per_tag_work() {
        let mut flood: Vec<String> = (0..40_000).map(|i| format!("tag-{i}")).collect();
        flood[0] = String::new();
        assert_eq!(Tags::parse(&flood).unwrap_err().message, "at most 50 tags");
        let duplicates = vec!["same"; 51];
        assert_eq!(Tags::parse(&duplicates).unwrap_err().message, "at most 50 tags");
        assert_eq!(Tags::parse(&vec!["same"; 50]).unwrap().as_slice(), ["same"]);
    }

    /// Text longer than four bytes per allowed character is refused before it is scanned or copied.
    #[test]
    fn oversized_text_is_refused_by_length_before_other_checks() {
        let nul_late = format!("{}\0", "a".repeat(4 * MaterialTitle::MAX_CHARS));
        assert_eq!(MaterialTitle::parse(&nul_late).unwrap_err().message, "must be at most 500 characters");
        let tag = format!("{}\0", "a".repeat(4 * Tags::MAX_TAG_CHARS));
        assert_eq!(Tags::parse(&[tag]).unwrap_err().message, "a tag must be at most 64 characters");
        assert!(Password::parse(&"p".repeat(5000)).is_err());
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(2000))).is_err());
        assert!(Position::parse(&"€".repeat(256)).is_ok());
        assert!(DeviceName::parse(Some(&"x".repeat(401))).is_err());
    }

    #[test]
    fn nul_is_refused_everywhere() {
        assert!(MaterialTitle::parse("a\0b").is_err());
        assert!(MaterialBody::parse("a\0b").is_err());
        assert!(Tags::parse(&["a\0"]).is_err());
        assert!(Position::parse("\0").is_err());
        assert!(Email::parse("a\0@example.com").is_err());
        assert!(DeviceName::parse(Some("x\0")).is_err());
    }

    #[test]
    fn percent_range() {
        assert!(PercentComplete::parse(-0.1).is_err());
        assert!(PercentComplete::parse(100.1).is_err());
        assert!(PercentComplete::parse(f64::NAN).is_err());
        assert!(PercentComplete::parse(100.0).is_ok());
    }
}
