//! Validated values. Each `parse` is the only way in, so code past the edge never re-checks.

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

/// A lower-cased e-mail address of a plausible shape (`local@domain.tld`, ≤ 254 chars).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        reject_nul("email", raw)?;
        let email = raw.trim().to_lowercase();
        let invalid = || ValidationError::new("email", "must be an e-mail address like name@example.com");
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
        reject_nul("password", raw)?;
        let chars = raw.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(ValidationError::new("password", "must be at least 8 characters"));
        }
        if chars > Self::MAX_CHARS {
            return Err(ValidationError::new("password", "must be at most 1024 characters"));
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
        let name = raw.map(str::trim).filter(|s| !s.is_empty()).unwrap_or("Unnamed device");
        reject_nul("deviceName", name)?;
        if name.chars().count() > Self::MAX_CHARS {
            return Err(ValidationError::new("deviceName", "must be at most 100 characters"));
        }
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
        reject_nul("title", raw)?;
        let title = raw.trim();
        if title.is_empty() {
            return Err(ValidationError::new("title", "must not be empty"));
        }
        if title.chars().count() > Self::MAX_CHARS {
            return Err(ValidationError::new("title", "must be at most 500 characters"));
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
        reject_nul("body", raw)?;
        if raw.len() > Self::MAX_BYTES {
            return Err(ValidationError::new("body", "must be at most 1 MiB (1048576 bytes of UTF-8)"));
        }
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

    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<Self, ValidationError> {
        let mut tags: Vec<String> = Vec::with_capacity(raw.len());
        for tag in raw {
            reject_nul("tags", tag.as_ref())?;
            let tag = tag.as_ref().trim();
            if tag.is_empty() {
                return Err(ValidationError::new("tags", "a tag must not be empty"));
            }
            if tag.chars().count() > Self::MAX_TAG_CHARS {
                return Err(ValidationError::new("tags", "a tag must be at most 64 characters"));
            }
            if !tags.iter().any(|t| t == tag) {
                tags.push(tag.to_owned());
            }
        }
        if tags.len() > Self::MAX_TAGS {
            return Err(ValidationError::new("tags", "at most 50 tags"));
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
        reject_nul("position", raw)?;
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(ValidationError::new("position", "must be at most 256 characters"));
        }
        Ok(Self(raw.to_owned()))
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
