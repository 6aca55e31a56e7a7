//! Error text for people: an error and its causes on one line.

use std::error::Error;

/// `error` followed by each of its sources not already in the text: the top level alone often
/// says only "transport error" or "client error".
pub fn error_chain(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
