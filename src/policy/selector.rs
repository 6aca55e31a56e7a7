//! Calico label selectors. Semantics deliberately follow libcalico-go
//! `lib/selector` (quirks included) so flowtrace agrees with Felix.

use std::collections::BTreeMap;
use std::fmt;

/// Calico rejects longer label keys (`MaxLabelLength` in the tokenizer).
const MAX_LABEL_KEY_LENGTH: usize = 512;

pub use crate::model::LabelLookup;

/// A selector parse failure.
pub type SelectorError = crate::errors::ParseError;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Expr {
    All,
    Global,
    Has(String),
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Contains(String, String),
    StartsWith(String, String),
    EndsWith(String, String),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

/// The expression is always kept in normal form (see `normalize`): that is
/// what lets `matches` binary-search set values and lets `Display` output
/// re-parse to an equal value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Selector {
    expr: Expr,
}

impl Selector {
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        let expr = Parser::new(text)?.parse_whole_selector()?;
        Ok(Selector::from_expr(expr))
    }

    pub fn all() -> Selector {
        Selector { expr: Expr::All }
    }

    pub fn from_expr(expr: Expr) -> Selector {
        Selector {
            expr: normalize(expr),
        }
    }

    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    pub fn matches<L: LabelLookup + ?Sized>(&self, labels: &L) -> bool {
        evaluate(&self.expr, labels)
    }

    pub fn is_all(&self) -> bool {
        self.expr == Expr::All
    }

    pub fn is_global(&self) -> bool {
        self.expr == Expr::Global
    }

    pub fn and(self, other: Selector) -> Selector {
        let mut conjuncts = Vec::new();
        for expr in [self.expr, other.expr] {
            match expr {
                Expr::All => {}
                Expr::And(parts) => {
                    conjuncts.extend(parts.into_iter().filter(|part| *part != Expr::All))
                }
                single => conjuncts.push(single),
            }
        }
        Selector::from_expr(Expr::And(conjuncts))
    }

    /// Every label key the selector tests, with the values it compares the key with (none for
    /// `has(k)`), in the order written.
    pub fn label_terms(&self) -> Vec<(&str, Vec<&str>)> {
        fn walk<'a>(expr: &'a Expr, out: &mut Vec<(&'a str, Vec<&'a str>)>) {
            match expr {
                Expr::All | Expr::Global => {}
                Expr::Has(key) => out.push((key, Vec::new())),
                Expr::Equals(key, value)
                | Expr::NotEquals(key, value)
                | Expr::Contains(key, value)
                | Expr::StartsWith(key, value)
                | Expr::EndsWith(key, value) => out.push((key, vec![value])),
                Expr::In(key, values) | Expr::NotIn(key, values) => {
                    out.push((key, values.iter().map(String::as_str).collect()))
                }
                Expr::Not(inner) => walk(inner, out),
                Expr::And(parts) | Expr::Or(parts) => parts.iter().for_each(|p| walk(p, out)),
            }
        }
        let mut out = Vec::new();
        walk(&self.expr, &mut out);
        out
    }

    pub fn with_key_prefix(&self, prefix: &str) -> Selector {
        // Prepending a key prefix keeps set values sorted, so the result is
        // still in normal form.
        Selector {
            expr: prefix_keys(&self.expr, prefix),
        }
    }
}

impl Default for Selector {
    fn default() -> Self {
        Selector::all()
    }
}

impl std::str::FromStr for Selector {
    type Err = SelectorError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Selector::parse(text)
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.expr, f)
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_expr(f, self, Precedence::Or)
    }
}

/// Builds the Calico equivalent of a Kubernetes `LabelSelector`
/// (`matchLabels` plus `matchExpressions` as `(key, operator, values)`).
pub fn selector_from_k8s_label_selector(
    match_labels: &BTreeMap<String, String>,
    match_expressions: &[(String, String, Vec<String>)],
) -> Result<Selector, String> {
    let mut conjuncts = Vec::with_capacity(match_labels.len() + match_expressions.len());
    for (key, value) in match_labels {
        check_k8s_key(key)?;
        check_representable_value(key, value)?;
        conjuncts.push(Expr::Equals(key.clone(), value.clone()));
    }
    for (key, operator, values) in match_expressions {
        check_k8s_key(key)?;
        for value in values {
            check_representable_value(key, value)?;
        }
        let needs_values = matches!(operator.as_str(), "In" | "NotIn");
        let forbids_values = matches!(operator.as_str(), "Exists" | "DoesNotExist");
        // Kubernetes API validation rejects these shapes, so accepting them
        // here would invent semantics the API server never applies.
        if needs_values && values.is_empty() {
            return Err(format!(
                "label selector operator {operator:?} on key {key:?} needs at least one value"
            ));
        }
        if forbids_values && !values.is_empty() {
            return Err(format!(
                "label selector operator {operator:?} on key {key:?} must not have values"
            ));
        }
        let expr = match operator.as_str() {
            "In" => Expr::In(key.clone(), values.clone()),
            "NotIn" => Expr::NotIn(key.clone(), values.clone()),
            "Exists" => Expr::Has(key.clone()),
            "DoesNotExist" => Expr::Not(Box::new(Expr::Has(key.clone()))),
            unknown => {
                return Err(format!(
                    "unknown label selector operator {unknown:?} on key {key:?} \
                     (expected In, NotIn, Exists or DoesNotExist)"
                ))
            }
        };
        conjuncts.push(expr);
    }
    Ok(Selector::from_expr(Expr::And(conjuncts)))
}

fn check_k8s_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("label selector key must not be empty".to_string());
    }
    if !key.bytes().all(is_label_key_byte) {
        return Err(format!(
            "label selector key {key:?} has characters a Calico selector cannot express"
        ));
    }
    if key.len() > MAX_LABEL_KEY_LENGTH {
        return Err(format!(
            "label selector key {key:?} is longer than {MAX_LABEL_KEY_LENGTH} characters"
        ));
    }
    Ok(())
}

fn check_representable_value(key: &str, value: &str) -> Result<(), String> {
    // Selector strings have no escapes, so one value cannot use both quotes.
    if value.contains('"') && value.contains('\'') {
        return Err(format!(
            "label selector value {value:?} for key {key:?} contains both quote characters"
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Evaluation

fn evaluate<L: LabelLookup + ?Sized>(expr: &Expr, labels: &L) -> bool {
    match expr {
        Expr::All | Expr::Global => true,
        Expr::Has(key) => labels.label(key).is_some(),
        Expr::Equals(key, value) => labels.label(key) == Some(value.as_str()),
        Expr::NotEquals(key, value) => labels.label(key) != Some(value.as_str()),
        Expr::In(key, values) => match labels.label(key) {
            Some(actual) => sorted_values_contain(values, actual),
            None => false,
        },
        Expr::NotIn(key, values) => match labels.label(key) {
            Some(actual) => !sorted_values_contain(values, actual),
            None => true,
        },
        Expr::Contains(key, needle) => labels
            .label(key)
            .is_some_and(|actual| actual.contains(needle.as_str())),
        Expr::StartsWith(key, prefix) => labels
            .label(key)
            .is_some_and(|actual| actual.starts_with(prefix.as_str())),
        Expr::EndsWith(key, suffix) => labels
            .label(key)
            .is_some_and(|actual| actual.ends_with(suffix.as_str())),
        Expr::Not(inner) => !evaluate(inner, labels),
        Expr::And(parts) => parts.iter().all(|part| evaluate(part, labels)),
        Expr::Or(parts) => parts.iter().any(|part| evaluate(part, labels)),
    }
}

fn sorted_values_contain(values: &[String], actual: &str) -> bool {
    values
        .binary_search_by(|candidate| candidate.as_str().cmp(actual))
        .is_ok()
}

// ---------------------------------------------------------------------------
// Normal form and rewriting

/// Flattens nested `&&`/`||`, unwraps single-operand groups, cancels double
/// negation (the Calico parser folds runs of `!` the same way) and sorts and
/// de-duplicates set values (as Calico's parser does).
fn normalize(expr: Expr) -> Expr {
    match expr {
        Expr::And(parts) => {
            let mut flat = Vec::with_capacity(parts.len());
            for part in parts {
                match normalize(part) {
                    Expr::And(nested) => flat.extend(nested),
                    other => flat.push(other),
                }
            }
            match flat.len() {
                0 => Expr::All,
                1 => flat.pop().unwrap_or(Expr::All),
                _ => Expr::And(flat),
            }
        }
        Expr::Or(parts) => {
            let mut flat = Vec::with_capacity(parts.len());
            for part in parts {
                match normalize(part) {
                    Expr::Or(nested) => flat.extend(nested),
                    other => flat.push(other),
                }
            }
            match flat.len() {
                // An empty disjunction matches nothing; `!all()` is the only
                // way the selector language can say that.
                0 => Expr::Not(Box::new(Expr::All)),
                1 => flat.pop().unwrap_or(Expr::All),
                _ => Expr::Or(flat),
            }
        }
        Expr::Not(inner) => match normalize(*inner) {
            Expr::Not(double_negated) => *double_negated,
            other => Expr::Not(Box::new(other)),
        },
        Expr::In(key, values) => Expr::In(key, sorted_unique(values)),
        Expr::NotIn(key, values) => Expr::NotIn(key, sorted_unique(values)),
        leaf => leaf,
    }
}

fn sorted_unique(mut values: Vec<String>) -> Vec<String> {
    values.sort_unstable();
    values.dedup();
    values
}

fn prefix_keys(expr: &Expr, prefix: &str) -> Expr {
    let prefixed = |key: &String| format!("{prefix}{key}");
    match expr {
        Expr::All => Expr::All,
        Expr::Global => Expr::Global,
        Expr::Has(key) => Expr::Has(prefixed(key)),
        Expr::Equals(key, value) => Expr::Equals(prefixed(key), value.clone()),
        Expr::NotEquals(key, value) => Expr::NotEquals(prefixed(key), value.clone()),
        Expr::In(key, values) => Expr::In(prefixed(key), values.clone()),
        Expr::NotIn(key, values) => Expr::NotIn(prefixed(key), values.clone()),
        Expr::Contains(key, value) => Expr::Contains(prefixed(key), value.clone()),
        Expr::StartsWith(key, value) => Expr::StartsWith(prefixed(key), value.clone()),
        Expr::EndsWith(key, value) => Expr::EndsWith(prefixed(key), value.clone()),
        Expr::Not(inner) => Expr::Not(Box::new(prefix_keys(inner, prefix))),
        Expr::And(parts) => Expr::And(parts.iter().map(|p| prefix_keys(p, prefix)).collect()),
        Expr::Or(parts) => Expr::Or(parts.iter().map(|p| prefix_keys(p, prefix)).collect()),
    }
}

// ---------------------------------------------------------------------------
// Rendering

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Precedence {
    Or,
    And,
    Unary,
}

fn precedence_of(expr: &Expr) -> Precedence {
    match expr {
        Expr::Or(parts) if !parts.is_empty() => Precedence::Or,
        Expr::And(parts) if !parts.is_empty() => Precedence::And,
        _ => Precedence::Unary,
    }
}

fn write_expr(f: &mut fmt::Formatter<'_>, expr: &Expr, context: Precedence) -> fmt::Result {
    let needs_parens = precedence_of(expr) < context;
    if needs_parens {
        f.write_str("(")?;
    }
    match expr {
        Expr::All => f.write_str("all()")?,
        Expr::Global => f.write_str("global()")?,
        Expr::Has(key) => write!(f, "has({key})")?,
        Expr::Equals(key, value) => write_comparison(f, key, "==", value)?,
        Expr::NotEquals(key, value) => write_comparison(f, key, "!=", value)?,
        Expr::Contains(key, value) => write_comparison(f, key, "contains", value)?,
        Expr::StartsWith(key, value) => write_comparison(f, key, "starts with", value)?,
        Expr::EndsWith(key, value) => write_comparison(f, key, "ends with", value)?,
        Expr::In(key, values) => write_set_test(f, key, "in", values)?,
        Expr::NotIn(key, values) => write_set_test(f, key, "not in", values)?,
        Expr::Not(inner) => {
            f.write_str("!")?;
            write_expr(f, inner, Precedence::Unary)?;
        }
        // Empty groups only occur in hand-built trees; render their identities.
        Expr::And(parts) if parts.is_empty() => f.write_str("all()")?,
        Expr::Or(parts) if parts.is_empty() => f.write_str("!all()")?,
        Expr::And(parts) => write_joined(f, parts, " && ", Precedence::Unary)?,
        Expr::Or(parts) => write_joined(f, parts, " || ", Precedence::And)?,
    }
    if needs_parens {
        f.write_str(")")?;
    }
    Ok(())
}

fn write_joined(
    f: &mut fmt::Formatter<'_>,
    parts: &[Expr],
    separator: &str,
    operand_context: Precedence,
) -> fmt::Result {
    for (index, part) in parts.iter().enumerate() {
        if index > 0 {
            f.write_str(separator)?;
        }
        write_expr(f, part, operand_context)?;
    }
    Ok(())
}

fn write_comparison(
    f: &mut fmt::Formatter<'_>,
    key: &str,
    operator: &str,
    value: &str,
) -> fmt::Result {
    write!(f, "{key} {operator} ")?;
    write_quoted(f, value)
}

fn write_set_test(
    f: &mut fmt::Formatter<'_>,
    key: &str,
    operator: &str,
    values: &[String],
) -> fmt::Result {
    write!(f, "{key} {operator} {{")?;
    for (index, value) in values.iter().enumerate() {
        if index > 0 {
            f.write_str(", ")?;
        }
        write_quoted(f, value)?;
    }
    f.write_str("}")
}

fn write_quoted(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    // No escapes exist, so the quote style is chosen to avoid the value's own
    // quote character (the same choice Calico's String() makes).
    let quote = if value.contains('"') { '\'' } else { '"' };
    write!(f, "{quote}{value}{quote}")
}

// ---------------------------------------------------------------------------
// Tokenizer

fn is_label_key_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'/' | b'-')
}

fn is_selector_whitespace(byte: u8) -> bool {
    // Calico only skips spaces and tabs; newlines are syntax errors.
    byte == b' ' || byte == b'\t'
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TokenKind {
    Label,
    QuotedValue,
    LeftBrace,
    RightBrace,
    Comma,
    Equals,
    NotEquals,
    In,
    NotIn,
    Contains,
    StartsWith,
    EndsWith,
    Bang,
    All,
    Global,
    Has,
    LeftParen,
    RightParen,
    AndAnd,
    OrOr,
    EndOfInput,
}

#[derive(Clone, Copy, Debug)]
struct Token<'a> {
    kind: TokenKind,
    /// Byte offset of the token's first character.
    start: usize,
    /// The token exactly as written, for error messages.
    source_text: &'a str,
    /// Label key (for `Label` and `Has`) or unquoted content (`QuotedValue`).
    value: &'a str,
}

struct Tokenizer<'a> {
    source: &'a str,
    position: usize,
    /// Operator words are only recognised straight after a label, which is
    /// what lets `contains contains "x"` parse in Calico.
    previous_label: Option<&'a str>,
}

impl<'a> Tokenizer<'a> {
    fn new(source: &'a str) -> Self {
        Tokenizer {
            source,
            position: 0,
            previous_label: None,
        }
    }

    fn error_at(&self, byte_offset: usize, message: String) -> SelectorError {
        error_at(self.source, byte_offset, message)
    }

    fn skip_whitespace_from(&self, mut offset: usize) -> usize {
        let bytes = self.source.as_bytes();
        while offset < bytes.len() && is_selector_whitespace(bytes[offset]) {
            offset += 1;
        }
        offset
    }

    fn label_key_end(&self, start: usize) -> usize {
        let bytes = self.source.as_bytes();
        let mut end = start;
        while end < bytes.len() && is_label_key_byte(bytes[end]) {
            end += 1;
        }
        end
    }

    fn describe_source_at(&self, offset: usize) -> String {
        let rest = &self.source[offset..];
        match rest.chars().next() {
            None => "end of input".to_string(),
            Some(_) if is_label_key_byte(rest.as_bytes()[0]) => {
                let end = self.label_key_end(offset);
                format!("'{}'", abbreviate(&self.source[offset..end]))
            }
            Some(first) => format!("'{}'", first.escape_debug()),
        }
    }

    /// Matches operator words separated by optional whitespace ("not in",
    /// "notin", "starts  with"), requiring a non-key character afterwards so
    /// that e.g. `inx` is not read as `in`.
    fn match_operator_words(&self, words: &[&str]) -> Option<usize> {
        let mut offset = self.position;
        for (index, word) in words.iter().enumerate() {
            if index > 0 {
                offset = self.skip_whitespace_from(offset);
            }
            if !self.source[offset..].starts_with(word) {
                return None;
            }
            offset += word.len();
        }
        let at_boundary = self
            .source
            .as_bytes()
            .get(offset)
            .is_none_or(|&byte| !is_label_key_byte(byte));
        at_boundary.then_some(offset)
    }

    fn next_token(&mut self) -> Result<Token<'a>, SelectorError> {
        let token = self.scan_token()?;
        self.previous_label = (token.kind == TokenKind::Label).then_some(token.value);
        Ok(token)
    }

    fn scan_token(&mut self) -> Result<Token<'a>, SelectorError> {
        let source = self.source;
        let bytes = source.as_bytes();
        let start = self.skip_whitespace_from(self.position);
        self.position = start;
        let Some(&first) = bytes.get(start) else {
            return Ok(Token {
                kind: TokenKind::EndOfInput,
                start,
                source_text: "",
                value: "",
            });
        };
        let second = bytes.get(start + 1).copied();
        let single_char_kind = match first {
            b'(' => Some(TokenKind::LeftParen),
            b')' => Some(TokenKind::RightParen),
            b'{' => Some(TokenKind::LeftBrace),
            b'}' => Some(TokenKind::RightBrace),
            b',' => Some(TokenKind::Comma),
            b'!' if second != Some(b'=') => Some(TokenKind::Bang),
            _ => None,
        };
        if let Some(kind) = single_char_kind {
            return Ok(self.finish_token(kind, start, start + 1, ""));
        }
        match first {
            b'"' | b'\'' => {
                let quote = first as char;
                let Some(length) = source[start + 1..].find(quote) else {
                    return Err(self.error_at(
                        start,
                        format!(
                            "expected a closing {quote} for the value that starts here, \
                             found end of input (values cannot contain escapes)"
                        ),
                    ));
                };
                let content_end = start + 1 + length;
                let value = &source[start + 1..content_end];
                Ok(self.finish_token(TokenKind::QuotedValue, start, content_end + 1, value))
            }
            b'=' | b'!' | b'&' | b'|' => {
                let (kind, expected) = match first {
                    b'=' => (TokenKind::Equals, "=="),
                    b'!' => (TokenKind::NotEquals, "!="),
                    b'&' => (TokenKind::AndAnd, "&&"),
                    _ => (TokenKind::OrOr, "||"),
                };
                if second == Some(expected.as_bytes()[1]) {
                    Ok(self.finish_token(kind, start, start + 2, ""))
                } else {
                    Err(self.error_at(
                        start,
                        format!("expected '{expected}', found a single '{}'", first as char),
                    ))
                }
            }
            _ => match self.previous_label {
                Some(label) => self.scan_operator_word(label),
                None => self.scan_term(),
            },
        }
    }

    fn finish_token(
        &mut self,
        kind: TokenKind,
        start: usize,
        end: usize,
        value: &'a str,
    ) -> Token<'a> {
        self.position = end;
        Token {
            kind,
            start,
            source_text: &self.source[start..end],
            value,
        }
    }

    fn scan_operator_word(&mut self, label: &'a str) -> Result<Token<'a>, SelectorError> {
        const OPERATOR_WORDS: [(&[&str], TokenKind); 5] = [
            (&["contains"], TokenKind::Contains),
            (&["starts", "with"], TokenKind::StartsWith),
            (&["ends", "with"], TokenKind::EndsWith),
            (&["not", "in"], TokenKind::NotIn),
            (&["in"], TokenKind::In),
        ];
        let start = self.position;
        for (words, kind) in OPERATOR_WORDS {
            if let Some(end) = self.match_operator_words(words) {
                return Ok(self.finish_token(kind, start, end, ""));
            }
        }
        Err(self.error_at(
            start,
            format!(
                "expected an operator (==, !=, in, not in, contains, starts with, ends with) \
                 after label '{}', found {}",
                abbreviate(label),
                self.describe_source_at(start)
            ),
        ))
    }

    fn scan_term(&mut self) -> Result<Token<'a>, SelectorError> {
        let start = self.position;
        let rest = &self.source[start..];
        if rest.starts_with("has(") {
            let key_start = self.skip_whitespace_from(start + "has(".len());
            let key_end = self.label_key_end(key_start);
            if key_end == key_start {
                return Err(self.error_at(
                    key_start,
                    format!(
                        "expected a label key inside 'has(', found {}",
                        self.describe_source_at(key_start)
                    ),
                ));
            }
            self.check_key_length(key_start, key_end)?;
            let close = self.skip_whitespace_from(key_end);
            if self.source.as_bytes().get(close) != Some(&b')') {
                return Err(self.error_at(
                    close,
                    format!(
                        "expected ')' to close 'has(', found {}",
                        self.describe_source_at(close)
                    ),
                ));
            }
            let key = &self.source[key_start..key_end];
            return Ok(self.finish_token(TokenKind::Has, start, close + 1, key));
        }
        for (opener, kind) in [("all(", TokenKind::All), ("global(", TokenKind::Global)] {
            if rest.starts_with(opener) {
                let close = self.skip_whitespace_from(start + opener.len());
                if self.source.as_bytes().get(close) != Some(&b')') {
                    return Err(self.error_at(
                        close,
                        format!(
                            "expected ')' after '{opener}', found {}",
                            self.describe_source_at(close)
                        ),
                    ));
                }
                return Ok(self.finish_token(kind, start, close + 1, ""));
            }
        }
        let key_end = self.label_key_end(start);
        if key_end == start {
            return Err(self.error_at(
                start,
                format!(
                    "expected a label key, has(), all(), global(), '!', '(' or an operator, found {}",
                    self.describe_source_at(start)
                ),
            ));
        }
        self.check_key_length(start, key_end)?;
        let key = &self.source[start..key_end];
        Ok(self.finish_token(TokenKind::Label, start, key_end, key))
    }

    fn check_key_length(&self, start: usize, end: usize) -> Result<(), SelectorError> {
        if end - start > MAX_LABEL_KEY_LENGTH {
            return Err(self.error_at(
                start,
                format!(
                    "expected a label key of at most {MAX_LABEL_KEY_LENGTH} characters, \
                     found one of {} characters",
                    end - start
                ),
            ));
        }
        Ok(())
    }
}

fn error_at(source: &str, byte_offset: usize, message: String) -> SelectorError {
    SelectorError {
        column: source[..byte_offset].chars().count() + 1,
        message,
    }
}

/// Keeps error messages readable when a 512-character key is involved.
fn abbreviate(text: &str) -> String {
    const LIMIT: usize = 40;
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

fn describe_token(token: &Token<'_>) -> String {
    match token.kind {
        TokenKind::EndOfInput => "end of input".to_string(),
        TokenKind::QuotedValue => format!("quoted value {}", abbreviate(token.source_text)),
        _ => format!("'{}'", abbreviate(token.source_text)),
    }
}

// ---------------------------------------------------------------------------
// Parser: `||` binds loosest, then `&&`, then prefix `!`, then terms.

struct Parser<'a> {
    tokenizer: Tokenizer<'a>,
    current: Token<'a>,
    /// Parentheses open now.
    depth: usize,
}

/// Parentheses a selector may nest: far beyond any real selector, far below what would exhaust
/// the stack (parsing and matching recurse once per level).
const MAX_NESTING: usize = 256;

impl<'a> Parser<'a> {
    fn new(source: &'a str) -> Result<Self, SelectorError> {
        let mut tokenizer = Tokenizer::new(source);
        let current = tokenizer.next_token()?;
        Ok(Parser {
            tokenizer,
            current,
            depth: 0,
        })
    }

    fn advance(&mut self) -> Result<Token<'a>, SelectorError> {
        let next = self.tokenizer.next_token()?;
        Ok(std::mem::replace(&mut self.current, next))
    }

    fn error_at_current(&self, expected: &str) -> SelectorError {
        error_at(
            self.tokenizer.source,
            self.current.start,
            format!(
                "expected {expected}, found {}",
                describe_token(&self.current)
            ),
        )
    }

    fn parse_whole_selector(mut self) -> Result<Expr, SelectorError> {
        if self.current.kind == TokenKind::EndOfInput {
            return Ok(Expr::All);
        }
        let expr = self.parse_or()?;
        match self.current.kind {
            TokenKind::EndOfInput => Ok(expr),
            TokenKind::RightParen => {
                Err(self.error_at_current("'&&', '||' or end of input (unbalanced ')')"))
            }
            _ => Err(self.error_at_current("'&&', '||' or end of input")),
        }
    }

    fn parse_or(&mut self) -> Result<Expr, SelectorError> {
        let first = self.parse_and()?;
        if self.current.kind != TokenKind::OrOr {
            return Ok(first);
        }
        let mut disjuncts = vec![first];
        while self.current.kind == TokenKind::OrOr {
            self.advance()?;
            disjuncts.push(self.parse_and()?);
        }
        Ok(Expr::Or(disjuncts))
    }

    fn parse_and(&mut self) -> Result<Expr, SelectorError> {
        let first = self.parse_negatable_term()?;
        if self.current.kind != TokenKind::AndAnd {
            return Ok(first);
        }
        let mut conjuncts = vec![first];
        while self.current.kind == TokenKind::AndAnd {
            self.advance()?;
            conjuncts.push(self.parse_negatable_term()?);
        }
        Ok(Expr::And(conjuncts))
    }

    fn parse_negatable_term(&mut self) -> Result<Expr, SelectorError> {
        // Calico folds a run of `!` into a single parity bit.
        let mut negated = false;
        while self.current.kind == TokenKind::Bang {
            negated = !negated;
            self.advance()?;
        }
        let term = self.parse_term()?;
        Ok(if negated {
            Expr::Not(Box::new(term))
        } else {
            term
        })
    }

    fn parse_term(&mut self) -> Result<Expr, SelectorError> {
        match self.current.kind {
            TokenKind::Has => {
                let token = self.advance()?;
                Ok(Expr::Has(token.value.to_string()))
            }
            TokenKind::All => {
                self.advance()?;
                Ok(Expr::All)
            }
            TokenKind::Global => {
                self.advance()?;
                Ok(Expr::Global)
            }
            TokenKind::Label => {
                let label = self.advance()?;
                self.parse_label_test(label.value)
            }
            TokenKind::LeftParen => {
                self.depth += 1;
                if self.depth > MAX_NESTING {
                    return Err(error_at(
                        self.tokenizer.source,
                        self.current.start,
                        format!("parentheses nested more than {MAX_NESTING} deep"),
                    ));
                }
                let open = self.advance()?;
                let inner = self.parse_or()?;
                self.depth -= 1;
                if self.current.kind != TokenKind::RightParen {
                    let open_column =
                        error_at(self.tokenizer.source, open.start, String::new()).column;
                    return Err(self.error_at_current(&format!(
                        "')' to close the '(' at column {open_column}"
                    )));
                }
                self.advance()?;
                Ok(inner)
            }
            _ => Err(self.error_at_current("a label key, has(), all(), global(), '!' or '('")),
        }
    }

    fn parse_label_test(&mut self, key: &str) -> Result<Expr, SelectorError> {
        let operator = self.current;
        let key = key.to_string();
        let build_comparison: fn(String, String) -> Expr = match operator.kind {
            TokenKind::Equals => Expr::Equals,
            TokenKind::NotEquals => Expr::NotEquals,
            TokenKind::Contains => Expr::Contains,
            TokenKind::StartsWith => Expr::StartsWith,
            TokenKind::EndsWith => Expr::EndsWith,
            TokenKind::In | TokenKind::NotIn => {
                self.advance()?;
                let values = self.parse_value_set(operator.source_text)?;
                return Ok(if operator.kind == TokenKind::In {
                    Expr::In(key, values)
                } else {
                    Expr::NotIn(key, values)
                });
            }
            _ => {
                return Err(self.error_at_current(&format!(
                    "an operator (==, !=, in, not in, contains, starts with, ends with) after label '{}'",
                    abbreviate(&key)
                )))
            }
        };
        self.advance()?;
        if self.current.kind != TokenKind::QuotedValue {
            return Err(
                self.error_at_current(&format!("a quoted value after '{}'", operator.source_text))
            );
        }
        let value = self.advance()?;
        Ok(build_comparison(key, value.value.to_string()))
    }

    /// Parses `{ "a", "b" }`. Like Calico, `{}` and a trailing comma are fine.
    fn parse_value_set(&mut self, operator_text: &str) -> Result<Vec<String>, SelectorError> {
        if self.current.kind != TokenKind::LeftBrace {
            return Err(self.error_at_current(&format!("'{{' after '{operator_text}'")));
        }
        self.advance()?;
        let mut values = Vec::new();
        let mut after_value = false;
        while self.current.kind == TokenKind::QuotedValue {
            values.push(self.advance()?.value.to_string());
            after_value = true;
            if self.current.kind != TokenKind::Comma {
                break;
            }
            self.advance()?;
            after_value = false;
        }
        if self.current.kind != TokenKind::RightBrace {
            let expected = if after_value {
                "',' or '}' in the value set"
            } else {
                "a quoted value or '}' in the value set"
            };
            return Err(self.error_at_current(expected));
        }
        self.advance()?;
        Ok(values)
    }
}

// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;
    use std::collections::HashMap;

    /// Counts allocations per thread so the zero-allocation test is not
    /// disturbed by other tests running in parallel.
    struct CountingAllocator;

    thread_local! {
        static ALLOCATIONS_ON_THIS_THREAD: Cell<usize> = const { Cell::new(0) };
    }

    unsafe impl GlobalAlloc for CountingAllocator {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let _ = ALLOCATIONS_ON_THIS_THREAD.try_with(|count| count.set(count.get() + 1));
            System.alloc(layout)
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            System.dealloc(ptr, layout)
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let _ = ALLOCATIONS_ON_THIS_THREAD.try_with(|count| count.set(count.get() + 1));
            System.realloc(ptr, layout, new_size)
        }
    }

    #[global_allocator]
    static GLOBAL_ALLOCATOR: CountingAllocator = CountingAllocator;

    fn allocations_on_this_thread() -> usize {
        ALLOCATIONS_ON_THIS_THREAD.with(Cell::get)
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    fn parse_ok(text: &str) -> Selector {
        Selector::parse(text).unwrap_or_else(|error| panic!("{text:?} should parse: {error}"))
    }

    fn assert_round_trips(selector: &Selector, origin: &str) {
        let rendered = selector.to_string();
        let reparsed = Selector::parse(&rendered).unwrap_or_else(|error| {
            panic!("{origin:?} rendered as {rendered:?} which fails: {error}")
        });
        assert_eq!(
            &reparsed, selector,
            "{origin:?} -> {rendered:?} did not round-trip"
        );
        assert_eq!(
            reparsed.to_string(),
            rendered,
            "{origin:?} rendering is not stable"
        );
    }

    /// (selector, labels, expected match)
    type MatchCase = (&'static str, &'static [(&'static str, &'static str)], bool);

    const MATCH_CASES: &[MatchCase] = &[
        // libcalico-go parser_test selectorTests: == needs the label present with that value.
        (r#"a == "b""#, &[("a", "b")], true),
        (r#"a == "b""#, &[("a", "b"), ("c", "d")], true),
        (r#"a == "b""#, &[("a", "c")], false),
        (r#"a == "b""#, &[("c", "d")], false),
        (r#"a == "b""#, &[], false),
        (r#"a == """#, &[("a", "")], true),
        (r#"a == """#, &[], false),
        // Both quote styles are accepted (tokenizer: '"' and '\'' cases).
        (r#"a == 'a'"#, &[("a", "a")], true),
        (r#"a == '"'"#, &[("a", "\"")], true),
        (r#"a == "'""#, &[("a", "'")], true),
        // libcalico-go LabelNeValueNode: != matches an absent label.
        (r#"a != "b""#, &[], true),
        (r#"a != "b""#, &[("a", "a")], true),
        (r#"a != "a""#, &[("a", "a")], false),
        (r#"a != 'a'"#, &[("a", "a")], false),
        // LabelInSetNode / LabelNotInSetNode: in needs presence, not in matches absence.
        (r#"a in {"'", '"', "c"}"#, &[("a", "c")], true),
        (r#"a in {"'", '"', "c"}"#, &[("a", "\"")], true),
        (r#"a in {"'", '"', "c"}"#, &[("a", "'")], true),
        (r#"a in {"'", '"', "c"}"#, &[("a", "e")], false),
        (r#"a in {"'", '"', "c"}"#, &[], false),
        (r#"a not in {"'", '"', "c"}"#, &[], true),
        (r#"a not in {"'", '"', "c"}"#, &[("a", "e")], true),
        (r#"a not in {"'", '"', "c"}"#, &[("a", "c")], false),
        (r#"a notin {"d", "e"}"#, &[("a", "a")], true),
        (r#"a notin {"d", "e"}"#, &[("a", "e")], false),
        (r#"a in {"a", "b"}"#, &[("a", "b")], true),
        (r#"a in {"a", "b"}"#, &[("a", "c")], false),
        (r#"a in {"z", "y", "x", "a", "m"}"#, &[("a", "m")], true),
        (r#"a in {"z", "y", "x", "a", "m"}"#, &[("a", "n")], false),
        // Calico parser accepts an empty set: in {} never matches, not in {} always does.
        (r#"a in {}"#, &[("a", "")], false),
        (r#"a not in {}"#, &[("a", "x")], true),
        (r#"a not in {}"#, &[], true),
        // Trailing comma in a set is accepted by the Calico set-literal loop.
        (r#"a in {"x",}"#, &[("a", "x")], true),
        // contains / starts with / ends with require presence, even with "".
        (r#"a contains "a""#, &[("a", "bab")], true),
        (r#"a contains "a""#, &[("a", "b")], false),
        (r#"a contains "a""#, &[("b", "aaa")], false),
        (r#"a contains """#, &[("a", "x")], true),
        (r#"a contains """#, &[], false),
        (r#"a starts with "a""#, &[("a", "abb")], true),
        (r#"a starts with "a""#, &[("a", "baa")], false),
        (r#"a startswith "a""#, &[("a", "abb")], true),
        (r#"a starts with """#, &[], false),
        (r#"a ends with "a""#, &[("a", "bba")], true),
        (r#"a ends with "a""#, &[("a", "aab")], false),
        (r#"a endswith "a""#, &[("a", "bba")], true),
        (r#"a ends with """#, &[], false),
        // has() and all()/global(); empty or blank selectors are all().
        (r#"has(a)"#, &[("a", "")], true),
        (r#"has(a)"#, &[("b", "b")], false),
        (r#"!has(a)"#, &[("b", "b")], true),
        (r#"!has(a)"#, &[("a", "b")], false),
        ("", &[], true),
        ("  \t ", &[("a", "b")], true),
        ("all()", &[], true),
        (" all( ) ", &[("a", "b")], true),
        ("global()", &[], true),
        (" global( )", &[("a", "b")], true),
        ("!all()", &[], false),
        // Parser collapses repeated `!` into one negation flag.
        (r#"!!has(b)"#, &[("a", "b")], false),
        (r#"!!! has(a)"#, &[("a", "b")], false),
        (r#"!! ! has(a)"#, &[("a", "b")], false),
        (r#"! !!has(a)"#, &[], true),
        (r#"!!!!has(a)"#, &[("a", "x")], true),
        // `!` binds to the single operation after it, tighter than && and ||.
        (r#"!a in {"a"}"#, &[("a", "b")], true),
        (r#"!a == "1" && b == "1""#, &[("b", "1")], true),
        (r#"!a == "1" && b == "1""#, &[("a", "1"), ("b", "1")], false),
        (r#"!(a == "1" && b == "1")"#, &[("a", "1")], true),
        (
            r#"! a == 'a1' || ! b == 'b1'"#,
            &[("a", "a1"), ("b", "b1")],
            false,
        ),
        (r#"!(!has(a) || has(b))"#, &[("a", "a")], true),
        // && binds tighter than || (parseOrExpression -> parseAndExpression).
        (r#"a == "1" || b == "1" && c == "1""#, &[("a", "1")], true),
        (r#"a == "1" || b == "1" && c == "1""#, &[("b", "1")], false),
        (
            r#"(a == "1" || b == "1") && c == "1""#,
            &[("a", "1")],
            false,
        ),
        (
            r#"(a == "1" || b == "1") && c == "1""#,
            &[("b", "1"), ("c", "1")],
            true,
        ),
        (
            r#"a == 'a1' && b != 'b1'"#,
            &[("a", "a1"), ("b", "b1")],
            false,
        ),
        (
            r#"a != 'a1' || b != 'b1'"#,
            &[("a", "a1"), ("b", "b1")],
            false,
        ),
        (
            r#"a == 'a1' || b != 'b1'"#,
            &[("a", "a1"), ("b", "b1")],
            true,
        ),
        (r#"has(a) && !has(b)"#, &[("a", "a")], true),
        (r#"((((has(a)))))"#, &[("a", "a")], true),
        // Whitespace: only spaces and tabs; none is needed around operators.
        (r#"a=="b""#, &[("a", "b")], true),
        ("\ta\t==\t\"b\"\t", &[("a", "b")], true),
        (r#"a!="b""#, &[("a", "b")], false),
        (
            r#"a  not  in  {"b"}  &&  ! has( foo )"#,
            &[("a", "c")],
            true,
        ),
        (
            r#"a notin{"bar"}&&!has(foo)||b in{"c"}"#,
            &[("b", "c"), ("foo", "x")],
            true,
        ),
        (r#"a contains"value""#, &[("a", "xvaluex")], true),
        (r#"a starts  with "v""#, &[("a", "vv")], true),
        (r#"has( a )"#, &[("a", "")], true),
        // Operator words are only operators straight after a label (tokenizer lastTokKind).
        (
            r#"contains contains "contains""#,
            &[("contains", "xcontainsx")],
            true,
        ),
        (
            r#"startswith starts with 'value'"#,
            &[("startswith", "values")],
            true,
        ),
        (r#"in in {"in"}"#, &[("in", "in")], true),
        // `not in {..}` at the start is the label "not" followed by `in`.
        (r#"not in {"x"}"#, &[("not", "x")], true),
        (r#"not in {"x"}"#, &[("not", "y")], false),
        (
            r#"has == "x" && all == "y""#,
            &[("has", "x"), ("all", "y")],
            true,
        ),
        // Label key characters [A-Za-z0-9_./-] (tokenizer identifierChar).
        (
            r#"calico/k8s_NS-.1/role == "x""#,
            &[("calico/k8s_NS-.1/role", "x")],
            true,
        ),
        (
            r#"has(projectcalico.org/namespace)"#,
            &[("projectcalico.org/namespace", "ns")],
            true,
        ),
        (r#"1-a == "b""#, &[("1-a", "b")], true),
        // Values may hold any character except their own quote, unescaped.
        (r#"a == "x && y || (z)""#, &[("a", "x && y || (z)")], true),
        (r#"a == "héllo wörld""#, &[("a", "héllo wörld")], true),
        (r#"a contains "\n""#, &[("a", r"a\nb")], true),
    ];

    #[test]
    fn selectors_match_labels_like_calico() {
        for &(text, pairs, expected) in MATCH_CASES {
            let selector = parse_ok(text);
            let label_map = labels(pairs);
            assert_eq!(
                selector.matches(&label_map),
                expected,
                "{text:?} against {pairs:?}"
            );
            let hash_map: HashMap<String, String> = label_map.into_iter().collect();
            assert_eq!(
                selector.matches(&hash_map),
                expected,
                "{text:?} against {pairs:?} (HashMap)"
            );
        }
    }

    #[test]
    fn every_valid_selector_round_trips_through_display() {
        for &(text, _, _) in MATCH_CASES {
            assert_round_trips(&parse_ok(text), text);
        }
        for &(text, _) in CANONICAL_CASES {
            assert_round_trips(&parse_ok(text), text);
        }
    }

    /// (input, canonical rendering)
    const CANONICAL_CASES: &[(&str, &str)] = &[
        // libcalico-go parser_test canonicalisationTests (modulo Calico's extra parentheses).
        ("", "all()"),
        (" all() ", "all()"),
        (" (all() )", "all()"),
        ("global( )", "global()"),
        ("! (has( b)||! has(a ))", "!(has(b) || !has(a))"),
        (r#"! (a == "b"&&! c != "d")"#, r#"!(a == "b" && !c != "d")"#),
        (r#"a == "'""#, r#"a == "'""#),
        (r#"a == '"'"#, r#"a == '"'"#),
        (r#"a contains '"'"#, r#"a contains '"'"#),
        (r#"a startswith '"'"#, r#"a starts with '"'"#),
        (r#"a endswith "'""#, r#"a ends with "'""#),
        (r#"a!='"'"#, r#"a != '"'"#),
        (r#"a == 'b'"#, r#"a == "b""#),
        // Set values are sorted and de-duplicated (ConvertToStringSetInPlace).
        (r#"a in {"d", "a", "b"}"#, r#"a in {"a", "b", "d"}"#),
        (
            r#"a in {"z", "z", "x", "y", "x", "a"}"#,
            r#"a in {"a", "x", "y", "z"}"#,
        ),
        (r#"a notin {'b','a',}"#, r#"a not in {"a", "b"}"#),
        (r#"a in {}"#, r#"a in {}"#),
        (r#"a in {'"', "'"}"#, r#"a in {'"', "'"}"#),
        // Parentheses only where precedence needs them.
        (
            r#"a == "b" && (c == "d" || !has(e))"#,
            r#"a == "b" && (c == "d" || !has(e))"#,
        ),
        (
            r#"(a == "1" && b == "1") || c == "1""#,
            r#"a == "1" && b == "1" || c == "1""#,
        ),
        (
            r#"(a == "1" && b == "1") && c == "1""#,
            r#"a == "1" && b == "1" && c == "1""#,
        ),
        (
            r#"a == "1" || (b == "1" || c == "1")"#,
            r#"a == "1" || b == "1" || c == "1""#,
        ),
        (r#"!(a == "1")"#, r#"!a == "1""#),
        (r#"!(!(has(a)))"#, "has(a)"),
        (r#"!!has(a)"#, "has(a)"),
        (r#"!!!has(a)"#, "!has(a)"),
        (
            r#"!(a == "1" || b == "1") && c == "1""#,
            r#"!(a == "1" || b == "1") && c == "1""#,
        ),
        (r#"all() && global()"#, "all() && global()"),
    ];

    #[test]
    fn display_is_canonical() {
        for &(text, expected) in CANONICAL_CASES {
            assert_eq!(
                parse_ok(text).to_string(),
                expected,
                "rendering of {text:?}"
            );
        }
    }

    #[test]
    fn parse_builds_calico_shaped_trees() {
        // Calico: runs of `!` fold to one flag; sets are sorted/de-duplicated.
        let key = || "a".to_string();
        let cases: Vec<(&str, Expr)> = vec![
            ("", Expr::All),
            ("global()", Expr::Global),
            ("!!has(a)", Expr::Has(key())),
            ("!!!has(a)", Expr::Not(Box::new(Expr::Has(key())))),
            (
                r#"a in {"b", "a", "a"}"#,
                Expr::In(key(), vec!["a".to_string(), "b".to_string()]),
            ),
            (
                r#"a starts with "x""#,
                Expr::StartsWith(key(), "x".to_string()),
            ),
            (r#"a ends with "x""#, Expr::EndsWith(key(), "x".to_string())),
            (r#"a contains "x""#, Expr::Contains(key(), "x".to_string())),
            (
                r#"a == "1" || b == "2" && c != "3""#,
                Expr::Or(vec![
                    Expr::Equals(key(), "1".to_string()),
                    Expr::And(vec![
                        Expr::Equals("b".to_string(), "2".to_string()),
                        Expr::NotEquals("c".to_string(), "3".to_string()),
                    ]),
                ]),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_ok(text).expr(), &expected, "tree for {text:?}");
        }
    }

    /// (input, expected column, expected message)
    const ERROR_CASES: &[(&str, usize, &str)] = &[
        // Tokenizer: unterminated strings (no escapes, so the quote must recur).
        (r#"a == "b"#, 6, "expected a closing \" for the value that starts here, found end of input (values cannot contain escapes)"),
        (r#"a == 'b"#, 6, "expected a closing ' for the value that starts here, found end of input (values cannot contain escapes)"),
        (r#""FOO'"#, 1, "expected a closing \" for the value that starts here, found end of input (values cannot contain escapes)"),
        // Parser ErrExpectedString: right-hand side must be a literal.
        ("foo == bar", 8, "expected a quoted value after '==', found 'bar'"),
        ("b contains b", 12, "expected a quoted value after 'contains', found 'b'"),
        ("b starts with b", 15, "expected a quoted value after 'starts with', found 'b'"),
        ("b ends  with b", 14, "expected a quoted value after 'ends  with', found 'b'"),
        ("a == ", 6, "expected a quoted value after '==', found end of input"),
        ("foo != ||", 8, "expected a quoted value after '!=', found '||'"),
        (r#"'b1' == b"#, 1, "expected a label key, has(), all(), global(), '!' or '(', found quoted value 'b1'"),
        // Tokenizer: bad operators.
        (r#"a = "b""#, 3, "expected '==', found a single '='"),
        (r#"a === "b""#, 5, "expected '==', found a single '='"),
        (r#"a == "b" & has(foo)"#, 10, "expected '&&', found a single '&'"),
        (r#"a == "b" | has(foo)"#, 10, "expected '||', found a single '|'"),
        (r#"label squiggles "value""#, 7, "expected an operator (==, !=, in, not in, contains, starts with, ends with) after label 'label', found 'squiggles'"),
        (r#"label inf "value""#, 7, "expected an operator (==, !=, in, not in, contains, starts with, ends with) after label 'label', found 'inf'"),
        (r#"label ends withs "value""#, 7, "expected an operator (==, !=, in, not in, contains, starts with, ends with) after label 'label', found 'ends'"),
        (r#"a not "b""#, 3, "expected an operator (==, !=, in, not in, contains, starts with, ends with) after label 'a', found 'not'"),
        ("a b", 3, "expected an operator (==, !=, in, not in, contains, starts with, ends with) after label 'a', found 'b'"),
        ("a", 2, "expected an operator (==, !=, in, not in, contains, starts with, ends with) after label 'a', found end of input"),
        ("a )", 3, "expected an operator (==, !=, in, not in, contains, starts with, ends with) after label 'a', found ')'"),
        // Set literals (ErrExpectedSetLit / ErrExpectedRBrace).
        (r#"foo in """#, 8, "expected '{' after 'in', found quoted value \"\""),
        (r#"a not in "bar""#, 10, "expected '{' after 'not in', found quoted value \"bar\""),
        (r#"foo in {"", ||"#, 13, "expected a quoted value or '}' in the value set, found '||'"),
        (r#"a in {"b" "c"}"#, 11, "expected ',' or '}' in the value set, found quoted value \"c\""),
        ("a in {,}", 7, "expected a quoted value or '}' in the value set, found ','"),
        (r#"a in {"b""#, 10, "expected ',' or '}' in the value set, found end of input"),
        // Missing operands / trailing garbage ("unexpected content at end of selector").
        ("!", 2, "expected a label key, has(), all(), global(), '!' or '(', found end of input"),
        (r#"a == "b" &&"#, 12, "expected a label key, has(), all(), global(), '!' or '(', found end of input"),
        ("has(foo) ||", 12, "expected a label key, has(), all(), global(), '!' or '(', found end of input"),
        (r#"a == "b" "c""#, 10, "expected '&&', '||' or end of input, found quoted value \"c\""),
        ("has(a) has(b)", 8, "expected '&&', '||' or end of input, found 'has(b)'"),
        // Unbalanced parentheses (ErrExpectedRParen / unexpected token).
        ("(", 2, "expected a label key, has(), all(), global(), '!' or '(', found end of input"),
        (r#"(a == "foo""#, 12, "expected ')' to close the '(' at column 1, found end of input"),
        (r#"x == "1" && ((a == "foo") "#, 27, "expected ')' to close the '(' at column 13, found end of input"),
        (")", 1, "expected a label key, has(), all(), global(), '!' or '(', found ')'"),
        ("()", 2, "expected a label key, has(), all(), global(), '!' or '(', found ')'"),
        (r#"a == "b")"#, 9, "expected '&&', '||' or end of input (unbalanced ')'), found ')'"),
        // has()/all()/global() forms.
        ("has()", 5, "expected a label key inside 'has(', found ')'"),
        ("has(foo", 8, "expected ')' to close 'has(', found end of input"),
        ("has( foo bar)", 10, "expected ')' to close 'has(', found 'bar'"),
        ("all(", 5, "expected ')' after 'all(', found end of input"),
        ("global(x)", 8, "expected ')' after 'global(', found 'x'"),
        // Unexpected characters; newline is not whitespace; columns count characters.
        ("%", 1, "expected a label key, has(), all(), global(), '!', '(' or an operator, found '%'"),
        (r#"a == "b" && %"#, 13, "expected a label key, has(), all(), global(), '!', '(' or an operator, found '%'"),
        (r#"a == "é" && %"#, 13, "expected a label key, has(), all(), global(), '!', '(' or an operator, found '%'"),
        ("a\n== \"b\"", 2, "expected an operator (==, !=, in, not in, contains, starts with, ends with) after label 'a', found '\\n'"),
        ("\nhas(a)", 1, "expected a label key, has(), all(), global(), '!', '(' or an operator, found '\\n'"),
        ("é == \"x\"", 1, "expected a label key, has(), all(), global(), '!', '(' or an operator, found 'é'"),
    ];

    #[test]
    fn parentheses_nested_beyond_the_limit_are_an_error_not_a_stack_overflow() {
        let deep = format!("{}a == 'b'{}", "(".repeat(10_000), ")".repeat(10_000));
        let error = Selector::parse(&deep).unwrap_err();
        assert!(
            error.to_string().contains("nested more than 256 deep"),
            "{error}"
        );
        let fine = format!("{}a == 'b'{}", "(".repeat(256), ")".repeat(256));
        assert!(Selector::parse(&fine).is_ok());
    }

    #[test]
    fn parse_errors_report_column_and_expectation() {
        for &(text, column, message) in ERROR_CASES {
            match Selector::parse(text) {
                Ok(selector) => panic!("{text:?} should fail but parsed as {selector}"),
                Err(error) => {
                    assert_eq!(
                        (error.column, error.message.as_str()),
                        (column, message),
                        "error for {text:?}"
                    );
                    assert_eq!(error.to_string(), format!("column {column}: {message}"));
                }
            }
        }
    }

    #[test]
    fn label_keys_are_limited_to_512_characters() {
        // libcalico-go tokenizer: MaxLabelLength = 512, checked for labels and has().
        let longest = "k".repeat(MAX_LABEL_KEY_LENGTH);
        let too_long = "k".repeat(MAX_LABEL_KEY_LENGTH + 1);
        let selector = parse_ok(&format!(r#"{longest} == "v""#));
        assert!(selector.matches(&labels(&[(longest.as_str(), "v")])));
        assert_round_trips(&selector, "512-character key");
        assert!(parse_ok(&format!("has({longest})")).matches(&labels(&[(longest.as_str(), "")])));

        let expected_message =
            "expected a label key of at most 512 characters, found one of 513 characters"
                .to_string();
        for (text, column) in [
            (format!(r#"{too_long} == "v""#), 1),
            (format!(r#"a == "b" || {too_long} == "v""#), 13),
            (format!("has( {too_long})"), 6),
        ] {
            let error = Selector::parse(&text).expect_err("over-long key must be rejected");
            assert_eq!(
                (error.column, error.message.as_str()),
                (column, expected_message.as_str())
            );
        }
    }

    #[test]
    fn all_and_global_predicates() {
        // Calico: empty selector parses to AllNode; global() is its own node.
        for text in ["", "   ", "\t", "all()", "( all( ) )"] {
            let selector = parse_ok(text);
            assert!(selector.is_all(), "{text:?} is all()");
            assert!(!selector.is_global(), "{text:?} is not global()");
        }
        assert!(Selector::all().is_all());
        assert_eq!(Selector::default(), Selector::all());
        assert!(parse_ok("global()").is_global());
        assert!(!parse_ok("global()").is_all());
        assert!(!parse_ok("global() && has(a)").is_global());
        assert!(!parse_ok("all() && has(a)").is_all());
        assert!("has(a)".parse::<Selector>().is_ok());
    }

    #[test]
    fn and_flattens_and_drops_all() {
        let cases: &[(&str, &str, &str)] = &[
            ("all()", "all()", "all()"),
            ("", r#"a == "1""#, r#"a == "1""#),
            (r#"a == "1""#, "all()", r#"a == "1""#),
            (
                r#"a == "1" && b == "1""#,
                r#"c == "1" && d == "1""#,
                r#"a == "1" && b == "1" && c == "1" && d == "1""#,
            ),
            (
                r#"a == "1" || b == "1""#,
                r#"c == "1""#,
                r#"(a == "1" || b == "1") && c == "1""#,
            ),
            (r#"all() && a == "1""#, "has(b)", r#"a == "1" && has(b)"#),
            ("global()", "has(b)", "global() && has(b)"),
        ];
        for &(left, right, expected) in cases {
            let combined = parse_ok(left).and(parse_ok(right));
            assert_eq!(combined.to_string(), expected, "{left:?} and {right:?}");
            assert_round_trips(&combined, expected);
        }
        let combined = parse_ok(r#"a == "1" && b == "1""#).and(parse_ok(r#"c == "1""#));
        assert!(matches!(combined.expr(), Expr::And(parts) if parts.len() == 3));
        assert!(parse_ok("all()").and(Selector::all()).is_all());
    }

    #[test]
    fn with_key_prefix_rewrites_every_key() {
        // libcalico-go PrefixVisitor, used for pcns./pcsa. namespace and service-account selectors.
        let cases: &[(&str, &str, &str)] = &[
            ("k == 'v'", "pcns.", r#"pcns.k == "v""#),
            ("k != 'v'", "visited/", r#"visited/k != "v""#),
            ("k contains 'v'", "pcsa.", r#"pcsa.k contains "v""#),
            ("k starts with 'v'", "pcsa.", r#"pcsa.k starts with "v""#),
            ("k ends with 'v'", "pcsa.", r#"pcsa.k ends with "v""#),
            ("k in {'v'}", "pcns.", r#"pcns.k in {"v"}"#),
            ("k not in {'v'}", "pcns.", r#"pcns.k not in {"v"}"#),
            (
                "k == 'v' || has(x)",
                "pcns.",
                r#"pcns.k == "v" || has(pcns.x)"#,
            ),
            ("!(k == 'v')", "pcns.", r#"!pcns.k == "v""#),
            (
                "!(!(k == 'v' && has(t) || all()) && (a in {'b', 'c'}))",
                "visited/",
                r#"!(!(visited/k == "v" && has(visited/t) || all()) && visited/a in {"b", "c"})"#,
            ),
            ("all()", "pcns.", "all()"),
            ("global()", "pcns.", "global()"),
        ];
        for &(text, prefix, expected) in cases {
            let prefixed = parse_ok(text).with_key_prefix(prefix);
            assert_eq!(
                prefixed.to_string(),
                expected,
                "{text:?} with prefix {prefix:?}"
            );
            assert_round_trips(&prefixed, expected);
        }
        let prefixed = parse_ok("k == 'v'").with_key_prefix("pcns.");
        assert!(prefixed.matches(&labels(&[("pcns.k", "v")])));
        assert!(!prefixed.matches(&labels(&[("k", "v")])));
    }

    #[test]
    fn from_expr_normalizes_so_display_round_trips() {
        let equals = |k: &str| Expr::Equals(k.to_string(), "1".to_string());
        let cases: Vec<(Expr, &str)> = vec![
            (Expr::And(vec![]), "all()"),
            (Expr::Or(vec![]), "!all()"),
            (Expr::And(vec![equals("a")]), r#"a == "1""#),
            (
                Expr::And(vec![Expr::And(vec![equals("a"), equals("b")]), equals("c")]),
                r#"a == "1" && b == "1" && c == "1""#,
            ),
            (
                Expr::Not(Box::new(Expr::Or(vec![
                    equals("a"),
                    Expr::And(vec![equals("b"), equals("c")]),
                ]))),
                r#"!(a == "1" || b == "1" && c == "1")"#,
            ),
            (
                Expr::Not(Box::new(Expr::Not(Box::new(equals("a"))))),
                r#"a == "1""#,
            ),
            (
                Expr::NotIn(
                    "a".to_string(),
                    vec!["y".to_string(), "x".to_string(), "y".to_string()],
                ),
                r#"a not in {"x", "y"}"#,
            ),
        ];
        for (expr, expected) in cases {
            let selector = Selector::from_expr(expr.clone());
            assert_eq!(selector.to_string(), expected, "rendering of {expr:?}");
            let reparsed_raw =
                Selector::parse(&expr.to_string()).expect("raw Expr rendering parses");
            assert_eq!(reparsed_raw, selector, "raw rendering of {expr:?}");
            assert_round_trips(&selector, expected);
        }
        assert!(!Selector::from_expr(Expr::Or(vec![])).matches(&labels(&[])));
        // Sets from from_expr are sorted, so membership tests stay correct.
        let unsorted = Selector::from_expr(Expr::In(
            "a".into(),
            vec!["z".into(), "b".into(), "m".into()],
        ));
        assert!(unsorted.matches(&labels(&[("a", "b")])));
        assert!(unsorted.matches(&labels(&[("a", "z")])));
    }

    #[test]
    fn kubernetes_label_selectors_convert() {
        // libcalico-go k8s conversion k8sSelectorToCalico: matchLabels as ==, sorted by key;
        // In/NotIn/Exists/DoesNotExist map to in/not in/has/!has.
        let expression = |key: &str, operator: &str, values: &[&str]| {
            (
                key.to_string(),
                operator.to_string(),
                values.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
            )
        };
        let empty = BTreeMap::new();
        type Case<'c> = (
            BTreeMap<String, String>,
            Vec<(String, String, Vec<String>)>,
            &'c str,
        );
        let cases: Vec<Case> = vec![
            (empty.clone(), vec![], "all()"),
            (
                labels(&[("tier", "db"), ("app", "web")]),
                vec![],
                r#"app == "web" && tier == "db""#,
            ),
            (
                empty.clone(),
                vec![expression("env", "In", &["prod", "dev"])],
                r#"env in {"dev", "prod"}"#,
            ),
            (
                empty.clone(),
                vec![expression("env", "NotIn", &["prod"])],
                r#"env not in {"prod"}"#,
            ),
            (
                empty.clone(),
                vec![expression("env", "Exists", &[])],
                "has(env)",
            ),
            (
                empty.clone(),
                vec![expression("env", "DoesNotExist", &[])],
                "!has(env)",
            ),
            (
                labels(&[("app", "web")]),
                vec![
                    expression("env", "NotIn", &["prod"]),
                    expression("team", "Exists", &[]),
                ],
                r#"app == "web" && env not in {"prod"} && has(team)"#,
            ),
        ];
        for (match_labels, expressions, expected) in &cases {
            let selector = selector_from_k8s_label_selector(match_labels, expressions)
                .unwrap_or_else(|error| panic!("{expected:?}: {error}"));
            assert_eq!(selector.to_string(), *expected);
            assert_round_trips(&selector, expected);
        }

        let converted = selector_from_k8s_label_selector(
            &labels(&[("app", "web")]),
            &[expression("env", "NotIn", &["prod"])],
        )
        .unwrap();
        assert!(
            converted.matches(&labels(&[("app", "web")])),
            "NotIn matches an absent key"
        );
        assert!(!converted.matches(&labels(&[("app", "web"), ("env", "prod")])));

        let error_cases = vec![
            (expression("env", "Gt", &["1"]), "\"Gt\""),
            (expression("env", "in", &["a"]), "\"in\""),
            (expression("env", "In", &[]), "needs at least one value"),
            (expression("env", "Exists", &["a"]), "must not have values"),
            (expression("bad key", "Exists", &[]), "cannot express"),
            (expression("", "Exists", &[]), "must not be empty"),
        ];
        for (expression, expected_fragment) in error_cases {
            let error = selector_from_k8s_label_selector(&empty, std::slice::from_ref(&expression))
                .expect_err("conversion should fail");
            assert!(error.contains(expected_fragment), "{expression:?}: {error}");
        }
    }

    #[test]
    fn matches_does_not_allocate() {
        let selector = parse_ok(
            r#"(a == "1" || b != "2") && c in {"x", "y", "z"} && d not in {"q"} && has(e)
               && f contains "ell" && f starts with "h" && f ends with "o" && !has(g) && all() && global()"#
                .replace('\n', " ")
                .as_str(),
        );
        let label_map = labels(&[("a", "1"), ("c", "y"), ("e", ""), ("f", "hello")]);
        // Guard against a vacuous pass: the counter must see a real allocation.
        let before_probe = allocations_on_this_thread();
        let probe = std::hint::black_box(vec![1u8; 16]);
        assert!(allocations_on_this_thread() > before_probe && probe.len() == 16);
        let before = allocations_on_this_thread();
        let mut matched = 0;
        for _ in 0..1000 {
            if selector.matches(&label_map) {
                matched += 1;
            }
        }
        let allocations = allocations_on_this_thread() - before;
        assert_eq!(matched, 1000);
        assert_eq!(allocations, 0, "matches() allocated");
    }
}
