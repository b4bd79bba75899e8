//! Integers of request bodies that also take a JSON number with no fractional part (`44.0`):
//! JSON Schema's `integer` is any such number and some clients only have one number type, while
//! serde alone refuses them. `#[serde(deserialize_with = "queue_core::integral::exact")]`, or
//! `option` for an `Option` (with `#[serde(default)]`).
use serde::de::{self, Deserialize, Deserializer};

/// The integer a JSON number stands for, refused when it has a fractional part or does not fit.
pub fn exact<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    let number = serde_json::Number::deserialize(deserializer)?;
    let whole = if let Some(whole) = number.as_i64() {
        whole
    } else if let Some(float) = number.as_f64()
        && float.fract() == 0.0
        && float >= i64::MIN as f64
        && float < i64::MAX as f64
    {
        float as i64
    } else {
        return Err(de::Error::custom(format!(
            "expected an integer, got {number}"
        )));
    };
    T::try_from(whole).map_err(|_| de::Error::custom(format!("{whole} is out of range")))
}

/// `exact` for an optional field: null or absent is None.
pub fn option<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    #[derive(serde::Deserialize)]
    struct Wrapped<T: TryFrom<i64>>(#[serde(deserialize_with = "exact")] T);
    Ok(Option::<Wrapped<T>>::deserialize(deserializer)?.map(|Wrapped(value)| value))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Body {
        #[serde(deserialize_with = "super::exact")]
        tries: u32,
        #[serde(default, deserialize_with = "super::option")]
        limit: Option<i32>,
    }

    fn parse(text: &str) -> Result<Body, String> {
        serde_json::from_str(text).map_err(|err| err.to_string())
    }

    #[test]
    fn whole_numbers_are_read_however_they_are_written() {
        assert_eq!(
            parse(r#"{"tries": 3, "limit": 44.0}"#),
            Ok(Body {
                tries: 3,
                limit: Some(44)
            })
        );
        assert_eq!(
            parse(r#"{"tries": 3.0, "limit": null}"#),
            Ok(Body {
                tries: 3,
                limit: None
            })
        );
        assert_eq!(
            parse(r#"{"tries": 1e2}"#),
            Ok(Body {
                tries: 100,
                limit: None
            })
        );
    }

    #[test]
    fn fractions_strings_and_out_of_range_numbers_are_refused() {
        for (body, why) in [
            (r#"{"tries": 2.5}"#, "expected an integer, got 2.5"),
            (r#"{"tries": -1}"#, "-1 is out of range"),
            (r#"{"tries": "3"}"#, "invalid type: string"),
            (
                r#"{"tries": 1, "limit": 3000000000}"#,
                "3000000000 is out of range",
            ),
        ] {
            let err = parse(body).unwrap_err();
            assert!(err.contains(why), "{body}: {err}");
        }
    }
}
