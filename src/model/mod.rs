//! Flows, endpoints, labels and policy hits: plain data shared by every module. No I/O.

pub mod artefacts;
mod flow;
mod hit;
mod labels;
mod observed;
pub mod time;

pub use flow::{is_withheld, Endpoint, EndpointType, Flow, Protocol, Reporter, Service};
pub use hit::{
    qualified_name, HitAction, PolicyHit, PolicyKind, PolicyTrace, Verdict, PROFILE_TIER,
};
pub use labels::{LabelLookup, Labels};
pub use observed::{Counters, ObservedFlow};

/// A decimal integer of up to 18 digits with an optional sign, read as `str::parse::<i64>` reads
/// it but faster (flow records carry a dozen); `None` for any other text, which callers that
/// accept more hand to `str::parse`.
pub(crate) fn decimal(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, bytes),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut value = 0i64;
    for &digit in digits {
        let digit = digit.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value * 10 + digit as i64;
    }
    Some(if negative { -value } else { value })
}

/// The value of the first of `names` that `text` spells in any case (parsing this way allocates
/// nothing: it runs for every flow record).
fn by_name_ignoring_case<T: Copy>(text: &str, names: &[(&str, T)]) -> Option<T> {
    names
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(text))
        .map(|&(_, value)| value)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        /// `decimal` reads what `str::parse` reads, or leaves it to it.
        #[test]
        fn decimal_agrees_with_the_standard_parser(text in "[+-]?[0-9]{0,20}|[0-9a-z +-]{0,4}") {
            if let Some(value) = super::decimal(&text) {
                prop_assert_eq!(Some(value), text.parse::<i64>().ok());
            } else if text.len() <= 18 {
                prop_assert_eq!(text.parse::<i64>().ok(), None, "{}", text);
            }
        }
    }
}
