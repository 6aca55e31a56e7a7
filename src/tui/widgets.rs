//! Drawing pieces every screen uses: styles of tones and verdicts, counts with separators, the
//! frame of an overlay.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders};

use super::theme::{Role, Theme};
use super::trace_text::{self, Tone};
use crate::errors::printable;
use crate::model::Verdict;
pub use crate::printer::fit;

pub fn tone_style(theme: &Theme, tone: &Tone) -> Style {
    match tone {
        Tone::Text => theme.style(Role::Text),
        Tone::Muted => theme.style(Role::Muted),
        Tone::Title => theme.style(Role::Title),
        Tone::Allow => theme.style(Role::Allow),
        Tone::Deny => theme.style(Role::Deny),
        Tone::Pass => theme.style(Role::Pass),
        Tone::Pending => theme.style(Role::Pending),
        Tone::Unknown => theme.style(Role::Unknown),
        Tone::Tier(name) => theme.tier(name),
        Tone::Decided => theme
            .style(Role::Text)
            .add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
        Tone::Error => theme.style(Role::Error),
        Tone::DiffAdd => theme.style(Role::DiffAdd),
        Tone::DiffRemove => theme.style(Role::DiffRemove),
    }
}

pub fn owned_line(theme: &Theme, spans: &[trace_text::Span]) -> Line<'static> {
    Line::from(
        spans
            .iter()
            .map(|(text, tone)| Span::styled(printable(text).into_owned(), tone_style(theme, tone)))
            .collect::<Vec<_>>(),
    )
}

pub fn verdict_style(theme: &Theme, verdict: Verdict) -> Style {
    theme.style(match verdict {
        Verdict::Allow => Role::Allow,
        Verdict::Deny => Role::Deny,
        _ => Role::Unknown,
    })
}

/// `n` with thousands separated by commas.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A centred area of the given share of `area` (at least 60×10 where it fits).
pub fn popup_area(area: Rect, width_percent: u16, height_percent: u16) -> Rect {
    let width = (area.width * width_percent / 100).max(area.width.min(60));
    let height = (area.height * height_percent / 100).max(area.height.min(10));
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

/// The frame of an overlay `width` columns wide, its title cut with `…` to fit.
pub fn overlay_block<'a>(theme: &Theme, title: &str, width: u16) -> Block<'a> {
    let title = fit(title, (width as usize).saturating_sub(4));
    Block::default()
        .borders(Borders::ALL)
        .border_style(theme.style(Role::BorderFocused))
        .title(Span::styled(format!(" {title} "), theme.style(Role::Title)))
}

/// `text` in at most `width` columns, cut in the middle with `…` when longer: both ends stay
/// (a pod name's workload and its suffix).
pub fn fit_middle(text: &str, width: usize) -> String {
    let text = printable(text);
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= width {
        return text.into_owned();
    }
    let kept = width.saturating_sub(1);
    let tail = kept / 2;
    let head = kept - tail;
    let mut cut: String = chars[..head].iter().collect();
    cut.push('…');
    cut.extend(&chars[chars.len() - tail..]);
    cut
}

/// `line` in at most `width` columns, cut with `…` (in the style of the span it cuts).
pub fn fit_line(line: Line<'static>, width: usize) -> Line<'static> {
    if line.width() <= width {
        return line;
    }
    let mut left = width.saturating_sub(1);
    let mut spans = Vec::new();
    for span in line.spans {
        let length = span.content.chars().count();
        if length <= left {
            left -= length;
            spans.push(span);
            continue;
        }
        let kept: String = span.content.chars().take(left).collect();
        spans.push(Span::styled(kept + "…", span.style));
        break;
    }
    Line::from(spans).style(line.style)
}

/// The ASCII look-alike of a glyph the screens draw, for a terminal that shows only ASCII; any
/// other character outside ASCII (a name from outside) becomes `?`.
fn ascii_of(c: char) -> char {
    match c {
        '…' => '~',
        // `>` is already the verdict arrow's and the deciding step's (`>>`): a tier and its
        // policy are parted by `:`.
        '›' => ':',
        '→' | '▶' => '>',
        '·' | '•' => '.',
        '–' | '—' | '─' | '━' | '═' => '-',
        '│' | '┃' | '║' | '▏' => '|',
        '┌' | '┐' | '└' | '┘' | '├' | '┤' | '┬' | '┴' | '┼' | '╭' | '╮' | '╰' | '╯' => {
            '+'
        }
        '↑' => '^',
        '↓' => 'v',
        '●' => '*',
        '✗' | '×' => 'x',
        c if c.is_ascii() => c,
        _ => '?',
    }
}

/// Redraws every cell of `buffer` in ASCII (`Theme::ascii`): one place for every screen.
pub fn asciify(buffer: &mut Buffer) {
    for cell in &mut buffer.content {
        let symbol = cell.symbol();
        if !symbol.is_ascii() {
            let ascii: String = symbol.chars().map(ascii_of).take(1).collect();
            cell.set_symbol(&ascii);
        }
    }
}

/// `line` wrapped to `width` columns, broken after a space where one is near the end; the lines
/// it continues on are indented two more than its own indent, so they read as one item.
pub fn wrap_line(line: Line<'static>, width: usize) -> Vec<Line<'static>> {
    if line.width() <= width || width < 8 {
        return vec![fit_line(line, width)];
    }
    let style = line.style;
    let chars: Vec<(char, Style)> = line
        .spans
        .iter()
        .flat_map(|span| span.content.chars().map(move |c| (c, span.style)))
        .collect();
    let indent = chars.iter().take_while(|(c, _)| *c == ' ').count() + 2;
    let indent = if indent * 2 > width { 2 } else { indent };
    let mut pieces = Vec::new();
    let mut start = 0;
    while start < chars.len() {
        let room = if pieces.is_empty() {
            width
        } else {
            width - indent
        };
        let mut end = (start + room).min(chars.len());
        if end < chars.len() {
            // Break after the last space of the piece's second half, else mid-word.
            if let Some(space) = chars[start + room / 2..end]
                .iter()
                .rposition(|(c, _)| *c == ' ')
            {
                end = start + room / 2 + space + 1;
            }
        }
        let mut spans: Vec<Span<'static>> = Vec::new();
        if !pieces.is_empty() {
            spans.push(Span::raw(" ".repeat(indent)));
        }
        for &(c, char_style) in &chars[start..end] {
            match spans.last_mut() {
                Some(last) if last.style == char_style => last.content.to_mut().push(c),
                _ => spans.push(Span::styled(c.to_string(), char_style)),
            }
        }
        pieces.push(Line::from(spans).style(style));
        start = end;
        while start < chars.len() && chars[start].0 == ' ' {
            start += 1;
        }
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ascii_terminal_gets_look_alikes_and_never_a_wide_glyph() {
        let mut buffer = Buffer::with_lines(["┌ Trace ─┐", "a › b…→ é"]);
        asciify(&mut buffer);
        assert_eq!(buffer, Buffer::with_lines(["+ Trace -+", "a : b~> ?"]));
    }

    #[test]
    fn a_wrapped_line_keeps_every_character_and_its_style() {
        let line = Line::from(vec![
            Span::raw("  - "),
            Span::styled("database/database-backends-only", Style::new().bold()),
            Span::raw(" (order 20): not applied: the policy is in another namespace"),
        ]);
        let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
        let pieces = wrap_line(line, 30);
        assert!(pieces.len() > 2, "{pieces:?}");
        for piece in &pieces {
            assert!(piece.width() <= 30, "{piece:?}");
        }
        assert!(pieces[1].spans[0].content.starts_with("    "), "{pieces:?}");
        // Every character is there, in order (a word longer than a line is broken within).
        let joined: String = pieces
            .iter()
            .flat_map(|p| p.spans.iter().map(|s| s.content.to_string()))
            .collect();
        let visible = |s: &str| s.chars().filter(|c| *c != ' ').collect::<String>();
        assert_eq!(visible(&joined), visible(&text));
        let bold = pieces
            .iter()
            .flat_map(|p| &p.spans)
            .find(|s| s.content.contains("database/"))
            .unwrap();
        assert_eq!(bold.style, Style::new().bold());
    }

    #[test]
    fn a_text_cut_in_the_middle_keeps_both_ends() {
        assert_eq!(fit_middle("payments/api-7d9c6b5f8-*", 14), "payment…b5f8-*");
        assert_eq!(fit_middle("short", 14), "short");
        assert_eq!(fit_middle("abcdef", 1), "…");
        let line = Line::from(vec![Span::raw("passed to "), Span::raw("tier security")]);
        let cut = fit_line(line.clone(), 14);
        assert_eq!(cut.to_string(), "passed to tie…");
        assert_eq!(fit_line(line, 40).to_string(), "passed to tier security");
    }
}
