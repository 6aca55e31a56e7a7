//! The part of a `--filter` the flow servers apply themselves (Goldmane's `Filter`, Whisker's
//! `filters` JSON name the same terms alike), so that less crosses the network.

use crate::model::{Protocol, Verdict};
use crate::store::filter::{Field, Filter};

/// A string match as Goldmane's `StringMatch` and Whisker's filters take it: exact, or fuzzy
/// (substring).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub value: String,
    pub fuzzy: bool,
}

impl Match {
    pub fn exact(value: impl Into<String>) -> Match {
        Match {
            value: value.into(),
            fuzzy: false,
        }
    }

    pub fn fuzzy(value: impl Into<String>) -> Match {
        Match {
            value: value.into(),
            fuzzy: true,
        }
    }
}

/// The terms both servers' filters take. Each list is OR-ed, different lists are AND-ed, as
/// Goldmane does.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ServerFilter {
    pub source_namespaces: Vec<Match>,
    pub dest_namespaces: Vec<Match>,
    pub source_names: Vec<Match>,
    pub dest_names: Vec<Match>,
    pub protocols: Vec<Match>,
    pub dest_ports: Vec<u16>,
    pub actions: Vec<Verdict>,
}

impl ServerFilter {
    /// What of `filter` the servers can apply. Verdicts are pushed only when they are the ones the
    /// server recorded (`recorded_verdicts`: flowtrace does not decide them itself).
    pub fn of(filter: &Filter, recorded_verdicts: bool) -> ServerFilter {
        let mut pushed = ServerFilter::default();
        for term in filter.server_terms() {
            let matches = || {
                term.values
                    .iter()
                    .map(|v| Match {
                        value: v.clone(),
                        fuzzy: term.fuzzy,
                    })
                    .collect::<Vec<_>>()
            };
            match term.field {
                Field::SourceNamespace => pushed.source_namespaces = matches(),
                Field::DestNamespace => pushed.dest_namespaces = matches(),
                Field::Source => pushed.source_names = matches(),
                Field::Dest => pushed.dest_names = matches(),
                Field::Protocol if !term.fuzzy => {
                    pushed.protocols = term
                        .values
                        .iter()
                        .filter_map(|v| Protocol::parse(v))
                        .map(|p| Match::exact(p.name()))
                        .collect()
                }
                Field::Port if !term.fuzzy => {
                    pushed.dest_ports = term.values.iter().filter_map(|v| v.parse().ok()).collect()
                }
                Field::Action if recorded_verdicts && !term.fuzzy => {
                    pushed.actions = term
                        .values
                        .iter()
                        .filter_map(|v| Verdict::parse(v))
                        .collect()
                }
                _ => {}
            }
        }
        pushed
    }
}
