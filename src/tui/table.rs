//! Tables of store records: row selection, column widths from the content, and cells that are
//! sanitized and cut with an ellipsis to their column.
//!
//! Only the visible rows are built on each draw, so a table of ten thousand mappings costs the
//! same to draw as a table of twenty.

use std::ops::Range;

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState, Wrap};

use crate::tui::text;
use crate::tui::theme::Theme;

/// Rows measured for the column widths besides the visible ones: enough to be stable while
/// scrolling, few enough to keep a draw cheap.
const MEASURED_ROWS: usize = 256;
/// Space between two columns.
const COLUMN_SPACING: u16 = 1;

/// A column: its title, the widest it may get, the width it keeps while others shrink, and
/// its alignment.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub title: &'static str,
    pub max: usize,
    pub min: usize,
    pub right: bool,
}

impl Column {
    pub const fn left(title: &'static str, max: usize) -> Self {
        Self {
            title,
            max,
            min: 0,
            right: false,
        }
    }

    pub const fn right(title: &'static str, max: usize) -> Self {
        Self {
            right: true,
            ..Self::left(title, max)
        }
    }

    /// Keeps at least `min` columns (or the content's width, when smaller) while other
    /// columns shrink, for values that are useless when cut, like event types.
    pub const fn keep(self, min: usize) -> Self {
        Self { min, ..self }
    }
}

/// The text of one cell, as it comes from the store (unsanitized), with its style.
#[derive(Debug, Clone)]
pub struct CellText {
    pub text: String,
    pub style: Style,
}

impl CellText {
    pub fn plain(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            style: Style::new(),
        }
    }

    pub fn styled(text: impl Into<String>, style: Style) -> Self {
        Self {
            text: text.into(),
            style,
        }
    }
}

/// The selected row and the first visible row of a table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Selection {
    pub selected: usize,
    pub offset: usize,
    /// Rows visible at the last draw; page moves use it.
    pub page: usize,
}

impl Selection {
    /// Moves the selection by `step` rows, stopping at both ends.
    pub fn move_by(&mut self, len: usize, step: isize) {
        if len == 0 {
            self.selected = 0;
            return;
        }
        let target = self.selected.saturating_add_signed(step);
        self.selected = target.min(len - 1);
    }

    /// Moves one page up (`-1`) or down (`1`).
    pub fn page_by(&mut self, len: usize, pages: isize) {
        let page = isize::try_from(self.page.max(1)).unwrap_or(1);
        self.move_by(len, page * pages);
    }

    pub fn first(&mut self) {
        self.selected = 0;
    }

    pub fn last(&mut self, len: usize) {
        self.selected = len.saturating_sub(1);
    }

    /// Keeps the selection inside a list of `len` rows.
    pub fn clamp(&mut self, len: usize) {
        self.selected = self.selected.min(len.saturating_sub(1));
    }

    /// Returns the rows to draw in `height` lines, scrolling just enough to keep the selection visible.
    fn visible(&mut self, len: usize, height: usize) -> Range<usize> {
        self.clamp(len);
        self.page = height;
        if height == 0 || len == 0 {
            return 0..0;
        }
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + height {
            self.offset = self.selected + 1 - height;
        }
        self.offset = self.offset.min(len.saturating_sub(height));
        self.offset..(self.offset + height).min(len)
    }
}

/// A table to draw: columns, rows, the block around them and the text for an empty table.
pub struct TableView<'a, T> {
    pub columns: &'a [Column],
    pub items: &'a [T],
    pub cells: &'a dyn Fn(&T) -> Vec<CellText>,
    pub block: Block<'a>,
    pub empty: &'a str,
    /// Whether the selected row is highlighted (tables without a selection turn it off).
    pub highlight: bool,
}

impl<T> TableView<'_, T> {
    /// Draws the table and updates the selection's scroll offset.
    pub fn render(self, frame: &mut Frame, area: Rect, selection: &mut Selection, theme: &Theme) {
        let inner = self.block.inner(area);
        frame.render_widget(self.block.clone(), area);
        if self.items.is_empty() {
            let message =
                Paragraph::new(Line::styled(self.empty, theme.muted)).wrap(Wrap { trim: true });
            frame.render_widget(message, inner);
            return;
        }
        let body_height = usize::from(inner.height.saturating_sub(1));
        let visible = selection.visible(self.items.len(), body_height);
        let rows: Vec<Vec<CellText>> = self.items[visible.clone()]
            .iter()
            .map(|item| (self.cells)(item))
            .collect();
        let widths = self.column_widths(&rows, inner.width);

        let header = Row::new(
            self.columns
                .iter()
                .zip(&widths)
                .map(|(column, width)| cell(column, column.title, theme.title, *width)),
        );
        let body =
            rows.iter().map(|row| {
                Row::new(self.columns.iter().zip(row).zip(&widths).map(
                    |((column, content), width)| cell(column, &content.text, content.style, *width),
                ))
            });
        let highlight = if self.highlight {
            theme.selected
        } else {
            Style::new()
        };
        let table = Table::new(body, widths.iter().map(|w| Constraint::Length(*w)))
            .header(header)
            .column_spacing(COLUMN_SPACING)
            .row_highlight_style(highlight);
        let mut state =
            TableState::default().with_selected(Some(selection.selected - visible.start));
        frame.render_stateful_widget(table, inner, &mut state);
    }

    /// Computes the column widths. Each column gets the width of its title and widest measured
    /// cell, up to its maximum. When that does not fit, the widest columns shrink first.
    fn column_widths(&self, visible: &[Vec<CellText>], available: u16) -> Vec<u16> {
        let mut desired: Vec<usize> = self
            .columns
            .iter()
            .map(|column| text::width(column.title).min(column.max))
            .collect();
        let measured = self
            .items
            .iter()
            .take(MEASURED_ROWS)
            .map(|item| (self.cells)(item));
        for row in measured.chain(visible.iter().cloned()) {
            for ((want, content), column) in desired.iter_mut().zip(&row).zip(self.columns) {
                let width = text::width(&text::sanitize(&content.text)).min(column.max);
                *want = (*want).max(width);
            }
        }
        let gaps = usize::from(COLUMN_SPACING) * self.columns.len().saturating_sub(1);
        let room = usize::from(available).saturating_sub(gaps);
        let kept: Vec<usize> = self.columns.iter().map(|column| column.min).collect();
        shrink_to_fit(&desired, &kept, room)
            .into_iter()
            .map(|width| u16::try_from(width).unwrap_or(u16::MAX))
            .collect()
    }
}

fn cell<'a>(column: &Column, content: &str, style: Style, width: u16) -> Cell<'a> {
    let line = Line::styled(text::fit(content, usize::from(width)), style);
    if column.right {
        Cell::from(line.alignment(Alignment::Right))
    } else {
        Cell::from(line)
    }
}

/// Cuts `desired` widths down to a total of `room` by lowering a common ceiling, so the widest
/// columns give up space first and narrow ones keep their full width. A column never goes
/// below its `kept` width (capped at its desired width) unless the kept widths alone do not fit.
pub fn shrink_to_fit(desired: &[usize], kept: &[usize], room: usize) -> Vec<usize> {
    if desired.iter().sum::<usize>() <= room {
        return desired.to_vec();
    }
    let mut floors: Vec<usize> = desired
        .iter()
        .enumerate()
        .map(|(index, want)| kept.get(index).copied().unwrap_or(0).min(*want))
        .collect();
    if floors.iter().sum::<usize>() > room {
        floors.fill(0);
    }
    let width_under = |index: usize, ceiling: usize| desired[index].min(ceiling).max(floors[index]);
    let total_under = |ceiling: usize| (0..desired.len()).map(|i| width_under(i, ceiling)).sum();
    let (mut low, mut high) = (0, desired.iter().copied().max().unwrap_or(0));
    while low < high {
        let middle = (low + high).div_ceil(2);
        if total_under(middle) <= room {
            low = middle;
        } else {
            high = middle - 1;
        }
    }
    let mut widths: Vec<usize> = (0..desired.len()).map(|i| width_under(i, low)).collect();
    let mut spare = room.saturating_sub(total_under(low));
    for (width, want) in widths.iter_mut().zip(desired) {
        if spare == 0 {
            break;
        }
        if *want > *width {
            *width += 1;
            spare -= 1;
        }
    }
    widths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrink_keeps_narrow_columns() {
        assert_eq!(shrink_to_fit(&[4, 30, 10], &[], 30), vec![4, 16, 10]);
        assert_eq!(shrink_to_fit(&[4, 10], &[], 20), vec![4, 10]);
        assert_eq!(shrink_to_fit(&[10, 10, 10], &[], 10), vec![4, 3, 3]);
        assert_eq!(shrink_to_fit(&[10, 10], &[], 0), vec![0, 0]);
    }

    #[test]
    fn shrink_respects_kept_widths() {
        assert_eq!(
            shrink_to_fit(&[20, 30, 30], &[20, 0, 0], 40),
            vec![20, 10, 10]
        );
        assert_eq!(shrink_to_fit(&[5, 30], &[20, 0], 20), vec![5, 15]);
        assert_eq!(shrink_to_fit(&[20, 20], &[20, 20], 10), vec![5, 5]);
    }

    #[test]
    fn selection_scrolls_to_stay_visible() {
        let mut selection = Selection::default();
        selection.move_by(100, 30);
        assert_eq!(selection.visible(100, 10), 21..31);
        selection.move_by(100, -25);
        assert_eq!(selection.visible(100, 10), 5..15);
        selection.last(100);
        assert_eq!(selection.visible(100, 10), 90..100);
        assert_eq!(selection.visible(3, 10), 0..3);
        assert_eq!(selection.selected, 2);
    }
}
