//! A one-line text input (the filter bar and the `/` search), with completion of the filter
//! language's field names and of values seen in the store.

use crate::store::filter::FIELDS;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineEdit {
    text: String,
    /// Cursor as a char index.
    cursor: usize,
}

impl LineEdit {
    pub fn new(text: &str) -> LineEdit {
        LineEdit {
            text: text.to_string(),
            cursor: text.chars().count(),
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn cursor(&self) -> usize {
        self.cursor
    }

    fn byte_at(&self, chars: usize) -> usize {
        self.text
            .char_indices()
            .nth(chars)
            .map_or(self.text.len(), |(i, _)| i)
    }

    /// Carries out an editing action (delete, move the cursor, clear); false for any other.
    pub fn apply(&mut self, action: crate::tui::action::Action) -> bool {
        use crate::tui::action::Action;
        match action {
            Action::DeleteBack => self.delete_back(),
            Action::CursorLeft => self.left(),
            Action::CursorRight => self.right(),
            Action::CursorHome => self.home(),
            Action::CursorEnd => self.end(),
            Action::ClearInput => self.clear(),
            _ => return false,
        }
        true
    }

    pub fn insert(&mut self, c: char) {
        let at = self.byte_at(self.cursor);
        self.text.insert(at, c);
        self.cursor += 1;
    }

    pub fn delete_back(&mut self) {
        if self.cursor > 0 {
            self.cursor -= 1;
            let at = self.byte_at(self.cursor);
            self.text.remove(at);
        }
    }

    pub fn left(&mut self) {
        self.cursor = self.cursor.saturating_sub(1);
    }

    pub fn right(&mut self) {
        self.cursor = (self.cursor + 1).min(self.text.chars().count());
    }

    pub fn home(&mut self) {
        self.cursor = 0;
    }

    pub fn end(&mut self) {
        self.cursor = self.text.chars().count();
    }

    pub fn clear(&mut self) {
        self.text.clear();
        self.cursor = 0;
    }

    /// The word being typed at the cursor: its start (char index) and text.
    fn word(&self) -> (usize, String) {
        let before: Vec<char> = self.text.chars().take(self.cursor).collect();
        let start = before
            .iter()
            .rposition(|c| c.is_whitespace() || *c == '(' || *c == ',')
            .map_or(0, |i| i + 1);
        (start, before[start..].iter().collect())
    }

    /// Replaces the word at the cursor with `replacement`.
    fn replace_word(&mut self, start: usize, replacement: &str) {
        let from = self.byte_at(start);
        let to = self.byte_at(self.cursor);
        self.text.replace_range(from..to, replacement);
        self.cursor = start + replacement.chars().count();
    }

    /// Completes the word at the cursor: a field name, or after `field=` (or `!=`, `~`) a value
    /// from `values(field)`. Returns the candidates when more than one remains (after inserting
    /// their common prefix), for the bar to show.
    pub fn complete(&mut self, values: &dyn Fn(&str) -> Vec<String>) -> Vec<String> {
        let (start, word) = self.word();
        let operator = ["!=", "=", "~"]
            .iter()
            .filter_map(|op| word.find(op).map(|i| (i, *op)))
            .min_by_key(|(i, _)| *i);
        let (prefix_len, typed, candidates) = match operator {
            Some((at, op)) => {
                let field = &word[..at];
                let typed = &word[at + op.len()..];
                let prefix_len = word[..at + op.len()].chars().count();
                (prefix_len, typed.to_string(), values(field))
            }
            None => {
                let mut names: Vec<String> = FIELDS.iter().map(|(n, _)| n.to_string()).collect();
                names.extend(["src.label.", "dst.label."].map(String::from));
                (0, word.clone(), names)
            }
        };
        let lower = typed.to_ascii_lowercase();
        let mut matching: Vec<String> = candidates
            .into_iter()
            .filter(|c| c.to_ascii_lowercase().starts_with(&lower))
            .collect();
        matching.sort();
        matching.dedup();
        let Some(first) = matching.first() else {
            return Vec::new();
        };
        let common = matching.iter().fold(first.clone(), |common, c| {
            common
                .chars()
                .zip(c.chars())
                .take_while(|(a, b)| a.eq_ignore_ascii_case(b))
                .map(|(a, _)| a)
                .collect()
        });
        let mut completed: String = word.chars().take(prefix_len).collect();
        completed.push_str(if matching.len() == 1 { first } else { &common });
        // A lone field name gets its `=`; a lone value its trailing space.
        if matching.len() == 1 {
            if operator.is_none() && !first.ends_with('.') {
                completed.push('=');
            } else if operator.is_some() {
                completed.push(' ');
            }
        }
        if completed.chars().count() >= word.chars().count() {
            self.replace_word(start, &completed);
        }
        if matching.len() == 1 {
            Vec::new()
        } else {
            matching
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(field: &str) -> Vec<String> {
        match field {
            "dst.ns" => vec!["database".into(), "customer".into(), "default".into()],
            _ => Vec::new(),
        }
    }

    #[test]
    fn editing_moves_the_cursor_by_characters() {
        let mut edit = LineEdit::new("añb");
        edit.left();
        edit.delete_back();
        assert_eq!((edit.text(), edit.cursor()), ("ab", 1));
        edit.insert('é');
        edit.home();
        edit.insert('(');
        edit.end();
        edit.insert(')');
        assert_eq!(edit.text(), "(aéb)");
    }

    #[test]
    fn field_names_complete_with_their_operator() {
        let mut edit = LineEdit::new("action=deny rep");
        assert!(edit.complete(&values).is_empty());
        assert_eq!(edit.text(), "action=deny reporter=");
        let mut edit = LineEdit::new("s");
        let shown = edit.complete(&values);
        assert!(shown.contains(&"src.ns".to_string()) && shown.contains(&"since".to_string()));
    }

    #[test]
    fn values_complete_from_what_the_store_holds() {
        let mut edit = LineEdit::new("dst.ns=da");
        edit.complete(&values);
        assert_eq!(edit.text(), "dst.ns=database ");
        let mut edit = LineEdit::new("(dst.ns!=d");
        let shown = edit.complete(&values);
        assert_eq!(shown, vec!["database", "default"]);
        assert_eq!(edit.text(), "(dst.ns!=d", "no longer common prefix to add");
        let mut edit = LineEdit::new("dst.ns=x");
        assert!(edit.complete(&values).is_empty());
        assert_eq!(edit.text(), "dst.ns=x");
    }
}
