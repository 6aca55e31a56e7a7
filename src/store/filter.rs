//! The filter language people type at 3 a.m. (`docs/filter.md`):
//! `action=deny dst.ns=payments not tier=security port in (443, 8443)`.
//!
//! Terms are `field op value` with `=`, `!=`, `~` (substring) and `in (...)`; `and`, `or`, `not`
//! and parentheses combine them, and terms side by side mean `and`. A bare word is a fuzzy search
//! over the row's text. Errors name the column.

use std::cell::RefCell;
use std::collections::BTreeSet;

use rustc_hash::FxHashMap;

use fuzzy_matcher::skim::SkimMatcherV2;
use fuzzy_matcher::FuzzyMatcher;

use super::FlowStore;
use crate::model::{Endpoint, PolicyHit, Protocol, Reporter, Verdict};
use crate::policy::endpoint::name_matches;

/// What a filter looks at in a flow; implemented by stored flows and by flows being tailed.
pub trait FilterTarget {
    fn action(&self) -> Verdict;
    fn pending_action(&self) -> Verdict;
    fn source(&self) -> &Endpoint;
    fn dest(&self) -> &Endpoint;
    fn dest_port(&self) -> Option<u16>;
    fn protocol(&self) -> Protocol;
    fn reporter(&self) -> Reporter;
    fn enforced_hits(&self) -> &[PolicyHit];
    fn pending_hits(&self) -> &[PolicyHit];
    /// Unix seconds of the newest observation.
    fn last_seen(&self) -> i64;
    /// Whether a bare word matches the row's text (`row_text`). Stored flows answer from
    /// per-part results cached in `fuzzy`, which is what makes a search over a million fast.
    fn fuzzy_matches(&self, pattern: &str, fuzzy: &Fuzzy) -> bool {
        fuzzy.matches(&row_text(self), pattern)
    }
}

/// A filter parse failure.
pub type FilterError = crate::errors::ParseError;

/// Every field, with its names and what it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Action,
    Pending,
    Namespace,
    SourceNamespace,
    DestNamespace,
    Source,
    Dest,
    Port,
    Protocol,
    Tier,
    Policy,
    Kind,
    Reporter,
    Since,
}

/// Names as typed, each with its field; `src.label.K` / `dst.label.K` are handled apart.
pub const FIELDS: [(&str, Field); 14] = [
    ("action", Field::Action),
    ("pending", Field::Pending),
    ("ns", Field::Namespace),
    ("src.ns", Field::SourceNamespace),
    ("dst.ns", Field::DestNamespace),
    ("src", Field::Source),
    ("dst", Field::Dest),
    ("port", Field::Port),
    ("proto", Field::Protocol),
    ("tier", Field::Tier),
    ("policy", Field::Policy),
    ("kind", Field::Kind),
    ("reporter", Field::Reporter),
    ("since", Field::Since),
];

#[derive(Debug, Clone, PartialEq)]
pub enum Subject {
    Field(Field),
    SourceLabel(String),
    DestLabel(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equals,
    NotEquals,
    Contains,
    In,
    NotIn,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Compare {
        subject: Subject,
        operator: Operator,
        values: Vec<String>,
    },
    /// `since=15m`: seen within the last this many seconds.
    Since(i64),
    Fuzzy(String),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

/// A filter term a server can apply (see `Filter::server_terms`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTerm {
    pub field: Field,
    pub values: Vec<String>,
    /// Substring (`~`) rather than exact.
    pub fuzzy: bool,
}

/// A parsed filter, ready to test flows. The default filter keeps everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    expr: Option<Expr>,
    text: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Operator(Operator),
    Open,
    Close,
    Comma,
}

fn tokenize(text: &str) -> Result<Vec<(usize, Token)>, FilterError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let column = i + 1;
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push((column, Token::Open));
                i += 1;
            }
            ')' => {
                tokens.push((column, Token::Close));
                i += 1;
            }
            ',' => {
                tokens.push((column, Token::Comma));
                i += 1;
            }
            '=' => {
                // `==` is accepted as `=`.
                i += if chars.get(i + 1) == Some(&'=') { 2 } else { 1 };
                tokens.push((column, Token::Operator(Operator::Equals)));
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                tokens.push((column, Token::Operator(Operator::NotEquals)));
                i += 2;
            }
            '~' => {
                tokens.push((column, Token::Operator(Operator::Contains)));
                i += 1;
            }
            '"' | '\'' => {
                let end =
                    chars[i + 1..]
                        .iter()
                        .position(|&q| q == c)
                        .ok_or_else(|| FilterError {
                            column,
                            message: format!("unterminated string: add the closing {c}"),
                        })?;
                tokens.push((
                    column,
                    Token::Quoted(chars[i + 1..i + 1 + end].iter().collect()),
                ));
                i += end + 2;
            }
            _ => {
                let start = i;
                let ends_word = |i: usize| {
                    chars[i].is_whitespace()
                        || "()=,~\"'".contains(chars[i])
                        || (chars[i] == '!' && chars.get(i + 1) == Some(&'='))
                };
                while i < chars.len() && !ends_word(i) {
                    i += 1;
                }
                tokens.push((column, Token::Word(chars[start..i].iter().collect())));
            }
        }
    }
    Ok(tokens)
}

fn field_names() -> String {
    let mut names: Vec<&str> = FIELDS.iter().map(|(n, _)| *n).collect();
    names.extend(["src.label.KEY", "dst.label.KEY"]);
    names.join(", ")
}

fn subject(name: &str) -> Option<Subject> {
    if let Some((_, field)) = FIELDS.iter().find(|(n, _)| *n == name) {
        return Some(Subject::Field(*field));
    }
    match name.split_once(".label.") {
        Some(("src", key)) if !key.is_empty() => Some(Subject::SourceLabel(key.to_string())),
        Some(("dst", key)) if !key.is_empty() => Some(Subject::DestLabel(key.to_string())),
        _ => None,
    }
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    position: usize,
    end_column: usize,
    /// Levels open now: each `(` and `not` opens one.
    depth: usize,
}

/// Levels of `(` and `not` a filter may nest: far beyond what anyone types, far below what
/// would exhaust the stack (parsing and matching recurse once per level).
const MAX_NESTING: usize = 64;

fn is_keyword(token: &Token, keyword: &str) -> bool {
    matches!(token, Token::Word(w) if w.eq_ignore_ascii_case(keyword))
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position).map(|(_, t)| t)
    }

    fn peek_at(&self, offset: usize) -> Option<&Token> {
        self.tokens.get(self.position + offset).map(|(_, t)| t)
    }

    fn column(&self) -> usize {
        self.tokens
            .get(self.position)
            .map(|(c, _)| *c)
            .unwrap_or(self.end_column)
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T, FilterError> {
        Err(FilterError {
            column: self.column(),
            message: message.into(),
        })
    }

    fn found(&self) -> String {
        match self.peek() {
            None => "the end of the filter".to_string(),
            Some(Token::Word(w)) => format!("'{w}'"),
            Some(Token::Quoted(q)) => format!("\"{q}\""),
            Some(Token::Operator(_)) => "an operator".to_string(),
            Some(Token::Open) => "'('".to_string(),
            Some(Token::Close) => "')'".to_string(),
            Some(Token::Comma) => "','".to_string(),
        }
    }

    fn parse_or(&mut self) -> Result<Expr, FilterError> {
        let mut items = vec![self.parse_and()?];
        while self.peek().is_some_and(|t| is_keyword(t, "or")) {
            self.position += 1;
            items.push(self.parse_and()?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            Expr::Or(items)
        })
    }

    fn parse_and(&mut self) -> Result<Expr, FilterError> {
        let mut items = vec![self.parse_unary()?];
        loop {
            match self.peek() {
                None | Some(Token::Close) => break,
                Some(t) if is_keyword(t, "or") => break,
                Some(t) if is_keyword(t, "and") => self.position += 1,
                _ => {}
            }
            items.push(self.parse_unary()?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            Expr::And(items)
        })
    }

    fn parse_unary(&mut self) -> Result<Expr, FilterError> {
        if self.peek().is_some_and(|t| is_keyword(t, "not")) {
            self.enter()?;
            self.position += 1;
            let inner = self.parse_unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.parse_primary()
    }

    /// Opens a level, or says where the filter nests too deep.
    fn enter(&mut self) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return self.error(format!(
                "nested more than {MAX_NESTING} levels deep ('(' and 'not' open one each)"
            ));
        }
        Ok(())
    }

    fn parse_primary(&mut self) -> Result<Expr, FilterError> {
        match self.peek().cloned() {
            Some(Token::Open) => {
                let open = self.column();
                self.enter()?;
                self.position += 1;
                let inner = self.parse_or()?;
                self.depth -= 1;
                if self.peek() != Some(&Token::Close) {
                    return Err(FilterError {
                        column: self.column(),
                        message: format!(
                            "expected ')' to close the '(' at column {open}, found {}",
                            self.found()
                        ),
                    });
                }
                self.position += 1;
                Ok(inner)
            }
            Some(Token::Word(word)) => {
                let is_comparison = matches!(self.peek_at(1), Some(Token::Operator(_)))
                    || self.peek_at(1).is_some_and(|t| is_keyword(t, "in"))
                    || (self.peek_at(1).is_some_and(|t| is_keyword(t, "not"))
                        && self.peek_at(2).is_some_and(|t| is_keyword(t, "in")));
                if is_comparison {
                    self.parse_comparison(&word)
                } else if word.eq_ignore_ascii_case("and") || word.eq_ignore_ascii_case("or") {
                    self.error(format!("expected a term before '{word}'"))
                } else {
                    self.position += 1;
                    Ok(Expr::Fuzzy(word))
                }
            }
            Some(Token::Quoted(text)) => {
                self.position += 1;
                Ok(Expr::Fuzzy(text))
            }
            _ => self.error(format!("expected a term, found {}", self.found())),
        }
    }

    fn parse_value(&mut self, after: &str) -> Result<String, FilterError> {
        match self.peek().cloned() {
            Some(Token::Word(w)) | Some(Token::Quoted(w)) => {
                self.position += 1;
                Ok(w)
            }
            _ => self.error(format!(
                "expected a value after {after}, found {}",
                self.found()
            )),
        }
    }

    fn parse_comparison(&mut self, name: &str) -> Result<Expr, FilterError> {
        let name_column = self.column();
        let Some(subject) = subject(&name.to_ascii_lowercase()) else {
            return Err(FilterError {
                column: name_column,
                message: format!("unknown field '{name}' (fields: {})", field_names()),
            });
        };
        self.position += 1;
        let operator = match self.peek().cloned() {
            Some(Token::Operator(op)) => {
                self.position += 1;
                op
            }
            Some(t) if is_keyword(&t, "in") => {
                self.position += 1;
                Operator::In
            }
            _ => {
                self.position += 2; // `not in`
                Operator::NotIn
            }
        };
        let value_column = self.column();
        let values = if matches!(operator, Operator::In | Operator::NotIn) {
            self.parse_list()?
        } else {
            vec![self.parse_value(match operator {
                Operator::Equals => "'='",
                Operator::NotEquals => "'!='",
                _ => "'~'",
            })?]
        };
        check_values(&subject, operator, &values).map_err(|message| FilterError {
            column: value_column,
            message,
        })?;
        if subject == Subject::Field(Field::Since) {
            return Ok(Expr::Since(parse_duration(&values[0]).expect("checked")));
        }
        Ok(Expr::Compare {
            subject,
            operator,
            values,
        })
    }

    fn parse_list(&mut self) -> Result<Vec<String>, FilterError> {
        if self.peek() != Some(&Token::Open) {
            return self.error(format!("expected '(' after 'in', found {}", self.found()));
        }
        self.position += 1;
        let mut values = vec![self.parse_value("'('")?];
        loop {
            match self.peek() {
                Some(Token::Comma) => {
                    self.position += 1;
                    values.push(self.parse_value("','")?);
                }
                Some(Token::Close) => {
                    self.position += 1;
                    return Ok(values);
                }
                _ => {
                    return self.error(format!(
                        "expected ',' or ')' in the list, found {}",
                        self.found()
                    ))
                }
            }
        }
    }
}

/// Values are checked when parsed, so a typo is reported at once, not as "nothing matches".
fn check_values(subject: &Subject, operator: Operator, values: &[String]) -> Result<(), String> {
    let Subject::Field(field) = subject else {
        return Ok(());
    };
    for value in values {
        match field {
            Field::Action | Field::Pending
                if operator != Operator::Contains
                    && !["allow", "deny", "unknown"]
                        .contains(&value.to_ascii_lowercase().as_str()) =>
            {
                return Err(format!("'{value}' is not an action (allow, deny, unknown)"));
            }
            Field::Port if operator != Operator::Contains => {
                value
                    .parse::<u16>()
                    .map_err(|_| format!("'{value}' is not a port number"))?;
            }
            Field::Protocol if operator != Operator::Contains => {
                Protocol::parse(value).ok_or_else(|| {
                    format!("'{value}' is not a protocol (tcp, udp, icmp, sctp or a number)")
                })?;
            }
            Field::Reporter if operator != Operator::Contains => {
                Reporter::parse(value)
                    .ok_or_else(|| format!("'{value}' is not a reporter (src, dst)"))?;
            }
            Field::Since => {
                if operator != Operator::Equals {
                    return Err("since takes '=' and a duration, e.g. since=15m".to_string());
                }
                parse_duration(value).ok_or_else(|| {
                    format!("'{value}' is not a duration (e.g. 30s, 15m, 2h, 1d)")
                })?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// `filter` limited to flows with an end in one of `namespaces` (kubectl's `-n`, repeatable):
/// `ns=NAMESPACE` (several joined with `or`), and the filter in parentheses when there is one.
pub fn in_namespaces(filter: &str, namespaces: &[String]) -> String {
    let scope = match namespaces {
        [] => return filter.to_string(),
        [one] => format!("ns={one}"),
        many => {
            let terms: Vec<String> = many.iter().map(|ns| format!("ns={ns}")).collect();
            format!("({})", terms.join(" or "))
        }
    };
    match filter.trim() {
        "" => scope,
        filter => format!("{scope} ({filter})"),
    }
}

/// `30s`, `15m`, `2h`, `1d` (or plain seconds) as seconds.
pub fn parse_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let number: i64 = number.parse().ok()?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return None,
    };
    number.checked_mul(scale)
}

impl Filter {
    /// Parses a filter; an empty or blank text matches everything.
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        let tokens = tokenize(text)?;
        if tokens.is_empty() {
            return Ok(Filter {
                expr: None,
                text: text.to_string(),
            });
        }
        let mut parser = Parser {
            tokens,
            position: 0,
            end_column: text.chars().count() + 1,
            depth: 0,
        };
        let expr = parser.parse_or()?;
        if parser.position < parser.tokens.len() {
            return parser.error(format!("unexpected {}", parser.found()));
        }
        Ok(Filter {
            expr: Some(expr),
            text: text.to_string(),
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn expr(&self) -> Option<&Expr> {
        self.expr.as_ref()
    }

    /// Texts that every record this filter can match contains verbatim, as far as the filter alone
    /// tells: values compared with `=` against names, namespaces, labels and ports, joined by `and`.
    /// A reader can skip lines lacking any of them without decoding. Fields whose value may come from
    /// elsewhere than the record (verdicts, policies) or be written differently (case, escapes)
    /// contribute nothing.
    pub fn required_texts(&self) -> Vec<String> {
        fn collect(expr: &Expr, texts: &mut Vec<String>) {
            match expr {
                Expr::And(items) => items.iter().for_each(|e| collect(e, texts)),
                Expr::Compare {
                    subject,
                    operator: Operator::Equals,
                    values,
                } if values.len() == 1 => {
                    let value = &values[0];
                    let literal =
                        !value.is_empty() && !value.contains(['*', '"', '\\']) && value.is_ascii();
                    let verbatim = matches!(
                        subject,
                        Subject::SourceLabel(_)
                            | Subject::DestLabel(_)
                            | Subject::Field(
                                Field::Namespace
                                    | Field::SourceNamespace
                                    | Field::DestNamespace
                                    | Field::Source
                                    | Field::Dest
                                    | Field::Port
                            )
                    );
                    if literal && verbatim {
                        texts.push(value.clone());
                    }
                }
                _ => {}
            }
        }
        let mut texts = Vec::new();
        if let Some(expr) = &self.expr {
            collect(expr, &mut texts);
        }
        texts
    }

    /// The `and`-joined terms a server can apply itself (Goldmane's and Whisker's filters): one
    /// field, any of some values, exact or substring. Flows are still filtered here afterwards, so a
    /// server applying them only ever sends less.
    pub fn server_terms(&self) -> Vec<ServerTerm> {
        let terms: Vec<&Expr> = match &self.expr {
            Some(Expr::And(items)) => items.iter().collect(),
            Some(term) => vec![term],
            None => Vec::new(),
        };
        terms
            .into_iter()
            .filter_map(|term| match term {
                Expr::Compare {
                    subject: Subject::Field(field),
                    operator,
                    values,
                } => {
                    let fuzzy = match operator {
                        Operator::Equals | Operator::In => false,
                        Operator::Contains => true,
                        Operator::NotEquals | Operator::NotIn => return None,
                    };
                    let pushable = matches!(
                        field,
                        Field::SourceNamespace
                            | Field::DestNamespace
                            | Field::Source
                            | Field::Dest
                            | Field::Port
                            | Field::Protocol
                            | Field::Action
                    );
                    let globbed = values.iter().any(|v| v.contains('*'));
                    (pushable && !globbed).then(|| ServerTerm {
                        field: *field,
                        values: values.clone(),
                        fuzzy,
                    })
                }
                _ => None,
            })
            .collect()
    }

    /// This filter and, as well, a fuzzy search for `pattern` (the TUI's `/` search).
    pub fn and_fuzzy(&self, pattern: &str) -> Filter {
        if pattern.trim().is_empty() {
            return self.clone();
        }
        let search = Expr::Fuzzy(pattern.trim().to_string());
        Filter {
            expr: Some(match self.expr.clone() {
                None => search,
                Some(Expr::And(mut items)) => {
                    items.push(search);
                    Expr::And(items)
                }
                Some(expr) => Expr::And(vec![expr, search]),
            }),
            text: self.text.clone(),
        }
    }

    pub fn matches_everything(&self) -> bool {
        self.expr.is_none()
    }

    /// Whether `target` passes, `now` being the current Unix time (for `since`).
    pub fn matches<T: FilterTarget + ?Sized>(&self, target: &T, now: i64, fuzzy: &Fuzzy) -> bool {
        self.expr
            .as_ref()
            .is_none_or(|e| evaluate(e, target, now, fuzzy))
    }
}

/// The fuzzy matcher bare words use: fuzzy-matcher's skim algorithm within one word of a row
/// (an endpoint, the port, the protocol, the verdict, a tier or a policy name), and only when the
/// letters it finds lie close together, so that a search finds what it names (`paymnt` finds
/// `payments`; `deny` does not find an allowed flow by letters scattered over its names). With
/// a cache for rows made of shared parts (`matches_parts`).
pub struct Fuzzy {
    matcher: SkimMatcherV2,
    parts: RefCell<PartCache>,
}

/// For one pattern: whether each part (by key) matches.
#[derive(Default)]
struct PartCache {
    pattern: String,
    matched: FxHashMap<u64, bool>,
}

/// A piece of a row's text: `key` names its text uniquely (so its result can be reused), and
/// `text` produces it when it has not been seen.
pub struct Part<'a> {
    pub key: u64,
    pub text: &'a dyn Fn() -> String,
}

impl Default for Fuzzy {
    fn default() -> Fuzzy {
        Fuzzy {
            matcher: SkimMatcherV2::default().ignore_case(),
            parts: RefCell::default(),
        }
    }
}

impl Fuzzy {
    /// Where `pattern` matches in `text`, for highlighting: the characters of the first word (or,
    /// for a pattern with spaces or a `/`, of the text) where it matches closely enough.
    pub fn positions(&self, text: &str, pattern: &str) -> Option<Vec<usize>> {
        let pattern = pattern.trim();
        if pattern.is_empty() {
            return None;
        }
        if pattern.contains(|c: char| c.is_whitespace() || c == '/') {
            return self.close_match(text, pattern);
        }
        let mut offset = 0;
        for word in text.split(|c: char| c.is_whitespace() || c == '/') {
            if let Some(positions) = self.close_match(word, pattern) {
                return Some(positions.into_iter().map(|p| p + offset).collect());
            }
            offset += word.chars().count() + 1;
        }
        None
    }

    pub fn matches(&self, text: &str, pattern: &str) -> bool {
        self.positions(text, pattern).is_some()
    }

    /// The positions skim finds for `pattern` in `text`, when they lie within the pattern's
    /// length plus a quarter (a letter left out or mistyped in a short word).
    fn close_match(&self, text: &str, pattern: &str) -> Option<Vec<usize>> {
        let (_, positions) = self.matcher.fuzzy_indices(text, pattern)?;
        let len = pattern.chars().count();
        let span = positions.last()? - positions.first()? + 1;
        (span <= len + len / 4).then_some(positions)
    }

    /// Whether `pattern` matches the text `parts` make put together, as `matches` says: a word
    /// lies within one part, so each part's answer is cached by its key and rows sharing
    /// endpoints and traces cost a few lookups; a pattern with a space or a `/` is matched
    /// against the whole text (it may span parts).
    pub fn matches_parts(&self, pattern: &str, parts: &[Part]) -> bool {
        if pattern
            .trim()
            .contains(|c: char| c.is_whitespace() || c == '/')
        {
            let text: String = parts.iter().map(|part| (part.text)()).collect();
            return self.matches(&text, pattern);
        }
        let mut cache = self.parts.borrow_mut();
        if cache.pattern != pattern {
            cache.pattern = pattern.to_string();
            cache.matched.clear();
        }
        parts.iter().any(|part| {
            *cache
                .matched
                .entry(part.key)
                .or_insert_with(|| self.matches(&(part.text)(), pattern))
        })
    }
}

/// Values of a filter field in the stored flows, for completion (a bounded sample).
pub fn stored_values(store: &FlowStore, field: &str) -> Vec<String> {
    const SAMPLE: usize = 50_000;
    let mut values = BTreeSet::new();
    let label = |endpoint: &Endpoint, key: &str, values: &mut BTreeSet<String>| {
        if let Some(value) = endpoint.labels.as_ref().and_then(|l| l.get(key)) {
            values.insert(value.to_string());
        }
    };
    for flow in store.iter().rev().take(SAMPLE) {
        let namespaces = |e: &Endpoint| e.namespace.as_deref().map(str::to_string);
        match field {
            "action" | "pending" => {
                values.extend(["allow", "deny", "pass"].map(String::from));
            }
            "ns" => values.extend(
                [flow.source, flow.dest]
                    .iter()
                    .filter_map(|e| namespaces(e)),
            ),
            "src.ns" => values.extend(namespaces(flow.source)),
            "dst.ns" => values.extend(namespaces(flow.dest)),
            "src" => {
                values.insert(flow.source.name.to_string());
            }
            "dst" => {
                values.insert(flow.dest.name.to_string());
            }
            "port" => values.extend(flow.port.map(|p| p.to_string())),
            "proto" => {
                values.insert(flow.protocol.to_string().to_ascii_lowercase());
            }
            "tier" => values.extend(flow.decided.enforced.iter().map(|h| h.tier.clone())),
            "policy" => values.extend(flow.decided.enforced.iter().map(|h| h.name.clone())),
            "kind" => values.extend(flow.decided.enforced.iter().map(|h| h.kind.to_string())),
            "reporter" => values.extend(["src", "dst"].map(String::from)),
            other => {
                if let Some(key) = other.strip_prefix("src.label.") {
                    label(flow.source, key, &mut values);
                } else if let Some(key) = other.strip_prefix("dst.label.") {
                    label(flow.dest, key, &mut values);
                }
            }
        }
    }
    values.into_iter().collect()
}

/// The text bare words search: both endpoints, port, protocol, verdicts and the deciding policies.
pub fn row_text<T: FilterTarget + ?Sized>(target: &T) -> String {
    let mut text = format!(
        "{} {} {} {} {}",
        target.source().display_name(),
        target.dest().display_name(),
        target
            .dest_port()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        target.protocol(),
        target.action()
    );
    text.push_str(&hits_text(target.enforced_hits()));
    text
}

/// The policies part of `row_text`: ` tier name` per hit (an end of tier by its policy).
pub fn hits_text(hits: &[PolicyHit]) -> String {
    let mut text = String::new();
    for hit in hits {
        text.push(' ');
        text.push_str(&hit.tier);
        text.push(' ');
        text.push_str(hit.trigger.as_deref().map_or(&hit.name, |t| &t.name));
    }
    text
}

fn text_matches(
    operator: Operator,
    actual: &str,
    values: &[String],
    glob: bool,
    ignore_case: bool,
) -> bool {
    let equal = |value: &String| {
        if glob && value.contains('*') {
            name_matches(value, actual)
        } else if ignore_case {
            actual.eq_ignore_ascii_case(value)
        } else {
            actual == value
        }
    };
    match operator {
        Operator::Equals | Operator::In => values.iter().any(equal),
        Operator::NotEquals | Operator::NotIn => !values.iter().any(equal),
        Operator::Contains => values.iter().any(|v| {
            actual
                .to_ascii_lowercase()
                .contains(&v.to_ascii_lowercase())
        }),
    }
}

/// For fields with several values per flow (both namespaces, every hit): `=`/`in`/`~` hold when
/// any value matches, `!=`/`not in` when none does.
fn any_matches<'a>(
    operator: Operator,
    actuals: impl Iterator<Item = &'a str>,
    values: &[String],
    glob: bool,
    ignore_case: bool,
) -> bool {
    let positive = match operator {
        Operator::NotEquals => Operator::Equals,
        Operator::NotIn => Operator::In,
        other => other,
    };
    let mut actuals = actuals;
    let found = actuals.any(|a| text_matches(positive, a, values, glob, ignore_case));
    if positive == operator {
        found
    } else {
        !found
    }
}

/// The hits that decided a flow: the last of the enforced and of the pending trace, and for an
/// end of tier the policy it is attributed to. `tier=`, `policy=` and `kind=` look at these, so that
/// `not tier=security` means "not decided by the security tier".
fn deciding_hits<T: FilterTarget + ?Sized>(target: &T) -> impl Iterator<Item = &PolicyHit> {
    let last = target
        .enforced_hits()
        .last()
        .into_iter()
        .chain(target.pending_hits().last());
    last.flat_map(|h| std::iter::once(h).chain(h.trigger.as_deref()))
}

fn evaluate<T: FilterTarget + ?Sized>(expr: &Expr, target: &T, now: i64, fuzzy: &Fuzzy) -> bool {
    match expr {
        Expr::And(items) => items.iter().all(|e| evaluate(e, target, now, fuzzy)),
        Expr::Or(items) => items.iter().any(|e| evaluate(e, target, now, fuzzy)),
        Expr::Not(inner) => !evaluate(inner, target, now, fuzzy),
        Expr::Since(seconds) => target.last_seen() >= now - seconds,
        Expr::Fuzzy(pattern) => target.fuzzy_matches(pattern, fuzzy),
        Expr::Compare {
            subject,
            operator,
            values,
        } => {
            let op = *operator;
            match subject {
                Subject::SourceLabel(key) => label_matches(target.source(), key, op, values),
                Subject::DestLabel(key) => label_matches(target.dest(), key, op, values),
                Subject::Field(field) => match field {
                    Field::Action => {
                        text_matches(op, target.action().as_str(), values, false, true)
                    }
                    Field::Pending => {
                        text_matches(op, target.pending_action().as_str(), values, false, true)
                    }
                    Field::SourceNamespace => text_matches(
                        op,
                        target.source().namespace.as_deref().unwrap_or(""),
                        values,
                        true,
                        false,
                    ),
                    Field::DestNamespace => text_matches(
                        op,
                        target.dest().namespace.as_deref().unwrap_or(""),
                        values,
                        true,
                        false,
                    ),
                    Field::Namespace => {
                        let both = [target.source(), target.dest()]
                            .into_iter()
                            .map(|e| e.namespace.as_deref().unwrap_or(""));
                        any_matches(op, both, values, true, false)
                    }
                    Field::Source => text_matches(op, &target.source().name, values, true, false),
                    Field::Dest => text_matches(op, &target.dest().name, values, true, false),
                    Field::Port => text_matches(
                        op,
                        &target
                            .dest_port()
                            .map(|p| p.to_string())
                            .unwrap_or_default(),
                        values,
                        false,
                        false,
                    ),
                    Field::Protocol => {
                        let wanted: Vec<String> = values
                            .iter()
                            .map(|v| Protocol::parse(v).map_or(v.clone(), |p| p.name()))
                            .collect();
                        let values = if op == Operator::Contains {
                            values
                        } else {
                            &wanted
                        };
                        text_matches(op, &target.protocol().name(), values, false, true)
                    }
                    Field::Reporter => {
                        text_matches(op, target.reporter().as_str(), values, false, true)
                    }
                    Field::Tier => any_matches(
                        op,
                        deciding_hits(target).map(|h| h.tier.as_str()),
                        values,
                        true,
                        false,
                    ),
                    Field::Policy => any_matches(
                        op,
                        deciding_hits(target)
                            .map(|h| h.name.as_str())
                            .filter(|n| !n.is_empty()),
                        values,
                        true,
                        false,
                    ),
                    Field::Kind => any_matches(
                        op,
                        deciding_hits(target).map(|h| h.kind.as_str()),
                        values,
                        false,
                        true,
                    ),
                    Field::Since => unreachable!("since parses to Expr::Since"),
                },
            }
        }
    }
}

fn label_matches(endpoint: &Endpoint, key: &str, operator: Operator, values: &[String]) -> bool {
    match endpoint.labels.as_ref().and_then(|l| l.get(key)) {
        Some(value) => text_matches(operator, value, values, true, false),
        // An absent label equals nothing, so `!=` and `not in` hold.
        None => matches!(operator, Operator::NotEquals | Operator::NotIn),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EndpointType, HitAction, Labels, PolicyKind};

    struct Row {
        source: Endpoint,
        dest: Endpoint,
        port: Option<u16>,
        protocol: Protocol,
        action: Verdict,
        pending: Verdict,
        hits: Vec<PolicyHit>,
        last_seen: i64,
    }

    impl FilterTarget for Row {
        fn action(&self) -> Verdict {
            self.action
        }
        fn pending_action(&self) -> Verdict {
            self.pending
        }
        fn source(&self) -> &Endpoint {
            &self.source
        }
        fn dest(&self) -> &Endpoint {
            &self.dest
        }
        fn dest_port(&self) -> Option<u16> {
            self.port
        }
        fn protocol(&self) -> Protocol {
            self.protocol
        }
        fn reporter(&self) -> Reporter {
            Reporter::Dst
        }
        fn enforced_hits(&self) -> &[PolicyHit] {
            &self.hits
        }
        fn pending_hits(&self) -> &[PolicyHit] {
            &[]
        }
        fn last_seen(&self) -> i64 {
            self.last_seen
        }
    }

    fn endpoint(ns: &str, name: &str, labels: &[&str]) -> Endpoint {
        Endpoint {
            kind: EndpointType::WorkloadEndpoint,
            name: name.into(),
            namespace: Some(ns.into()),
            labels: Some(Labels::from_kv_strings(labels.iter().copied())),
            ip: None,
            port: None,
        }
    }

    fn hit(tier: &str, name: &str, action: HitAction) -> PolicyHit {
        PolicyHit {
            kind: PolicyKind::GlobalNetworkPolicy,
            name: name.into(),
            namespace: String::new(),
            tier: tier.into(),
            action,
            policy_index: 0,
            rule_index: 0,
            trigger: None,
        }
    }

    fn denied_by_security() -> Row {
        Row {
            source: endpoint("checkout", "checkout-7d9f-*", &["app=checkout"]),
            dest: endpoint("payments", "payments-api-0", &["app=api", "team=pay"]),
            port: Some(443),
            protocol: Protocol::TCP,
            action: Verdict::Deny,
            pending: Verdict::Allow,
            hits: vec![
                hit("platform", "allow-dns", HitAction::Pass),
                hit("security", "pci-restrict", HitAction::Deny),
            ],
            last_seen: 1_000,
        }
    }

    fn matches(filter: &str, row: &Row) -> bool {
        Filter::parse(filter)
            .unwrap_or_else(|e| panic!("{filter}: {e}"))
            .matches(row, 1_060, &Fuzzy::default())
    }

    // docs/filter.md: fields, operators, implicit and, not, parentheses, in-lists.
    #[test]
    fn the_documented_example_and_each_field() {
        let row = denied_by_security();
        let cases: &[(&str, bool)] = &[
            ("", true),
            ("action=deny", true),
            ("action=DENY", true),
            ("action=allow", false),
            ("pending=allow", true),
            ("ns=payments", true),
            ("ns=checkout", true),
            ("ns!=payments", false),
            ("src.ns=checkout dst.ns=payments", true),
            ("dst.ns=checkout", false),
            ("src=checkout-*", true),
            ("dst=payments-api-0", true),
            ("dst~api", true),
            ("src.label.app=checkout", true),
            ("dst.label.team in (pay, ops)", true),
            ("dst.label.missing=x", false),
            ("dst.label.missing!=x", true),
            ("port=443", true),
            ("port in (80, 8443)", false),
            ("port not in (80, 8443)", true),
            ("proto=tcp", true),
            ("proto=6", true),
            ("proto=udp", false),
            ("tier=security", true),
            ("tier=platform", false),
            ("policy=allow-dns", false),
            ("not tier=security", false),
            ("policy=pci-*", true),
            ("kind=globalnetworkpolicy", true),
            ("reporter=dst", true),
            ("since=1m", true),
            ("since=30s", false),
            (
                "action=deny dst.ns=payments not tier=security port in (443, 8443)",
                false,
            ),
            (
                "action=deny dst.ns=payments tier=security port in (443, 8443)",
                true,
            ),
            ("action=allow or dst.ns=payments", true),
            ("action=allow or (dst.ns=x and port=443)", false),
            ("not (action=allow or port=80)", true),
            ("action = deny and port == 443", true),
            ("dst.ns='payments'", true),
            ("paymnts", true),
            ("zzzz", false),
            ("pci", true),
        ];
        for (filter, expected) in cases {
            assert_eq!(matches(filter, &row), *expected, "{filter}");
        }
    }

    #[test]
    fn or_binds_looser_than_implicit_and() {
        let expr = Filter::parse("action=deny port=1 or port=443").unwrap();
        assert!(matches!(expr.expr(), Some(Expr::Or(items)) if items.len() == 2));
        assert!(matches(
            "action=deny port=1 or port=443",
            &denied_by_security()
        ));
    }

    #[test]
    fn nesting_deeper_than_the_stack_allows_is_an_error_at_its_column() {
        // Tens of thousands of levels, balanced or not, in parentheses or `not`s: an error
        // naming the column, not a stack overflow.
        for text in [
            "(".repeat(20_000),
            format!("{}port=80{}", "(".repeat(20_000), ")".repeat(20_000)),
            "not ".repeat(20_000) + "port=80",
        ] {
            let error = Filter::parse(&text).unwrap_err();
            assert!(
                error.message.contains("nested more than 64 levels"),
                "{error}"
            );
            assert!(error.column > 60 && error.column < 300, "{error}");
        }
        let just = format!("{}port=80{}", "(".repeat(64), ")".repeat(64));
        assert!(Filter::parse(&just).is_ok());
    }

    #[test]
    fn errors_point_at_the_column() {
        let error = |text: &str| Filter::parse(text).unwrap_err();
        let cases: &[(&str, usize, &str)] = &[
            ("colour=red", 1, "unknown field 'colour'"),
            ("action=deny prot=tcp", 13, "unknown field 'prot'"),
            ("action=", 8, "expected a value after '='"),
            ("action=maybe", 8, "'maybe' is not an action"),
            ("port=https", 6, "'https' is not a port number"),
            ("port in 443", 9, "expected '(' after 'in'"),
            ("port in (443 8443)", 14, "expected ',' or ')'"),
            (
                "(action=deny",
                13,
                "expected ')' to close the '(' at column 1",
            ),
            ("action=deny)", 12, "unexpected ')'"),
            ("dst='payments", 5, "unterminated string"),
            ("since=yesterday", 7, "not a duration"),
            ("and port=1", 1, "expected a term before 'and'"),
        ];
        for (text, column, message) in cases {
            let e = error(text);
            assert_eq!(e.column, *column, "{text}: {e}");
            assert!(e.message.contains(message), "{text}: {e}");
        }
    }

    #[test]
    fn required_texts_are_only_what_every_match_contains() {
        let texts = |f: &str| Filter::parse(f).unwrap().required_texts();
        assert_eq!(
            texts("dst.ns=payments port=443 action=deny"),
            vec!["payments", "443"]
        );
        assert_eq!(texts("src.label.app=web and dst=api-*"), vec!["web"]);
        assert!(texts("dst.ns=a or dst.ns=b").is_empty(), "either may match");
        assert!(texts("not dst.ns=a").is_empty());
        assert!(
            texts("tier=security policy=x").is_empty(),
            "computed traces are not in the record"
        );
        assert!(texts("dst.ns~pay").is_empty());
        assert!(texts("").is_empty());
    }

    #[test]
    fn server_terms_are_the_anded_exact_or_substring_terms() {
        let terms = Filter::parse(
            "dst.ns=payments port in (443, 8443) src~web not action=allow dst=api-* tier=x",
        )
        .unwrap()
        .server_terms();
        let summary: Vec<(Field, Vec<&str>, bool)> = terms
            .iter()
            .map(|t| {
                (
                    t.field,
                    t.values.iter().map(String::as_str).collect(),
                    t.fuzzy,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (Field::DestNamespace, vec!["payments"], false),
                (Field::Port, vec!["443", "8443"], false),
                (Field::Source, vec!["web"], true)
            ]
        );
        assert!(Filter::parse("dst.ns=a or port=1")
            .unwrap()
            .server_terms()
            .is_empty());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Some(90));
        assert_eq!(parse_duration("15m"), Some(900));
        assert_eq!(parse_duration("2h"), Some(7200));
        assert_eq!(parse_duration("1d"), Some(86400));
        assert_eq!(parse_duration("1w"), None);
        assert_eq!(parse_duration("m"), None);
    }
}
