//! The help overlay (`?`): every key from the key map, in a centred box.

use super::style::Theme;
use crate::tui::input::KEYS;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget};

pub fn render(t: Theme, area: Rect, buf: &mut Buffer) {
    let lines: Vec<Line> = KEYS
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!(" {k:<16}"), t.accent()),
                Span::raw(*what),
            ])
        })
        .collect();
    let h = (lines.len() as u16 + 2).min(area.height);
    let w = 66.min(area.width);
    let r = area.centered(Constraint::Length(w), Constraint::Length(h));
    Clear.render(r, buf);
    Paragraph::new(lines)
        .block(
            Block::bordered()
                .border_style(t.accent())
                .title(Span::styled(" keys (Esc or ? closes) ", t.title())),
        )
        .render(r, buf);
}
