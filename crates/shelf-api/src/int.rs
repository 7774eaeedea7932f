//! Integers in request bodies, as JSON means them: `5` and `5.0` are the same number (JSON Schema
//! calls both an integer), but serde refuses `5.0` for an `i64`. These accept a number with no
//! fraction that fits, and refuse anything else with serde's usual message.

use serde::de::Error;
use serde::{Deserialize, Deserializer};

#[derive(Deserialize)]
#[serde(untagged)]
enum Number {
    Int(i64),
    Float(f64),
}

fn whole(number: Number) -> Result<i64, String> {
    match number {
        Number::Int(n) => Ok(n),
        // Every f64 with no fraction in this range converts exactly.
        Number::Float(f) if f.fract() == 0.0 && (-9.007_199_254_740_992e15..=9.007_199_254_740_992e15).contains(&f) => Ok(f as i64),
        Number::Float(f) => Err(format!("invalid value: {f}, expected an integer")),
    }
}

pub fn i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    whole(Number::deserialize(deserializer)?).map_err(D::Error::custom)
}

pub fn option_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    Option::<Number>::deserialize(deserializer)?.map(whole).transpose().map_err(D::Error::custom)
}

pub fn option_u32<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    let value = option_i64(deserializer)?;
    value.map(|n| u32::try_from(n).map_err(|_| D::Error::custom(format!("invalid value: {n}, expected a u32")))).transpose()
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(deserialize_with = "super::i64")]
        n: i64,
        #[serde(default, deserialize_with = "super::option_i64")]
        m: Option<i64>,
    }

    #[test]
    fn whole_numbers_are_integers_in_either_spelling() {
        let read = |json: &str| serde_json::from_str::<Probe>(json).map(|p| (p.n, p.m));
        assert_eq!(read(r#"{"n": 5}"#).unwrap(), (5, None));
        assert_eq!(read(r#"{"n": 5.0, "m": -2.0}"#).unwrap(), (5, Some(-2)));
        assert_eq!(read(r#"{"n": 9223372036854775807, "m": null}"#).unwrap(), (i64::MAX, None));
        assert!(read(r#"{"n": 5.5}"#).is_err());
        assert!(read(r#"{"n": 1e300}"#).is_err());
        assert!(read(r#"{"n": "5"}"#).is_err());
    }
}
