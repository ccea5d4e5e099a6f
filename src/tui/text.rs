//! Text shaping for widgets: neutralizing control characters, fitting text into a number of
//! terminal columns, and formatting times.
//!
//! Widths are display columns as `unicode-width` counts them, so wide (CJK, emoji) characters
//! take two columns and table columns stay aligned.

use std::borrow::Cow;
use std::fmt::Write;

use chrono::{DateTime, Local, Utc};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// The mark that ends truncated text.
pub const ELLIPSIS: char = '…';

/// Replaces characters that could act on the terminal or mislead the reader with visible
/// escapes: C0 controls and DEL become `\xHH` (`\n`, `\r` and `\t` keep their short names), C1
/// controls and bidirectional overrides become `\u{HHHH}`.
///
/// Every string that comes from the store or from a peer (subjects, reasons, client ids, audit
/// fields, error messages) goes through this function before it reaches a widget. An escape
/// sequence in a token claim is therefore shown as text instead of being run by the terminal.
pub fn sanitize(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x80 && c.is_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Control characters, and the Unicode bidirectional controls that can reorder what the
/// reader sees (the "Trojan Source" characters).
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}'
        )
        || matches!(c, '\u{2066}'..='\u{2069}')
}

/// Display width of `text` in terminal columns.
pub fn width(text: &str) -> usize {
    UnicodeWidthStr::width(text)
}

/// Sanitizes `text` and cuts it to at most `max` columns, ending with an ellipsis when cut.
pub fn fit(text: &str, max: usize) -> String {
    truncate(&sanitize(text), max)
}

/// Cuts already safe text to at most `max` columns, ending with an ellipsis when cut. A wide
/// character that would straddle the limit is dropped whole.
pub fn truncate(text: &str, max: usize) -> String {
    if width(text) <= max {
        return text.to_owned();
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > max - 1 {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push(ELLIPSIS);
    out
}

/// Counts the lines `text` takes when word-wrapped at `width` columns, placing words greedily
/// the way ratatui's `Paragraph` wrapping does and breaking words longer than a line.
pub fn wrapped_height(text: &str, width: u16) -> u16 {
    let width = usize::from(width.max(1));
    let lines: usize = text
        .split('\n')
        .map(|line| wrapped_lines(line, width))
        .sum();
    u16::try_from(lines).unwrap_or(u16::MAX)
}

fn wrapped_lines(line: &str, width: usize) -> usize {
    let mut lines = 1;
    let mut used = 0;
    for word in line.split(' ').filter(|word| !word.is_empty()) {
        let word_width = self::width(word);
        if used > 0 && used + 1 + word_width <= width {
            used += 1 + word_width;
            continue;
        }
        if used > 0 {
            lines += 1;
        }
        // A word wider than the line fills whole lines and continues on the next.
        lines += word_width.saturating_sub(1) / width;
        used = match word_width % width {
            0 if word_width > 0 => width,
            rest => rest,
        };
    }
    lines
}

/// Time formats from the most to the least detailed; [`time`] picks the first that fits.
const TIME_FORMATS: [&str; 4] = [
    "%Y-%m-%d %H:%M:%S",
    "%m-%d %H:%M:%S",
    "%m-%d %H:%M",
    "%H:%M",
];

/// Width of the most detailed time format.
pub const TIME_WIDTH: usize = 19;

/// Width of the shortest time format that still carries the date.
pub const SHORT_TIME_WIDTH: usize = 11;

/// Screen width from which tables show full times instead of the short form.
const FULL_TIME_FROM_COLUMNS: u16 = 120;

/// Returns the time width for table columns on a screen `columns` wide: full times on wide screens,
/// month, day, hours and minutes on narrow ones.
pub fn table_time_width(columns: u16) -> usize {
    if columns >= FULL_TIME_FROM_COLUMNS {
        TIME_WIDTH
    } else {
        SHORT_TIME_WIDTH
    }
}

/// Formats a time in the local time zone in the most detailed format that fits `max` columns.
pub fn time(at: DateTime<Utc>, max: usize) -> String {
    let local = at.with_timezone(&Local);
    let mut text = String::new();
    for format in TIME_FORMATS {
        text = local.format(format).to_string();
        if width(&text) <= max {
            return text;
        }
    }
    truncate(&text, max)
}

/// Formats an optional time, or `missing` when there is none.
pub fn optional_time(at: Option<DateTime<Utc>>, max: usize, missing: &str) -> String {
    at.map_or_else(|| truncate(missing, max), |at| time(at, max))
}

/// Formats a count with its digits grouped in threes, e.g. `12 345 678`.
pub fn count(value: i64) -> String {
    let digits = value.unsigned_abs().to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(digit);
    }
    if value < 0 { format!("-{out}") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_escapes_terminal_controls() {
        assert_eq!(sanitize("a\x1b[2J\nb"), "a\\x1b[2J\\nb");
        assert_eq!(sanitize("\u{9b}31m"), "\\u{009b}31m");
        assert_eq!(sanitize("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(sanitize("\x7f"), "\\x7f");
    }

    #[test]
    fn sanitize_keeps_plain_text_borrowed() {
        assert!(matches!(
            sanitize("user@example.com 漢字"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn truncate_respects_wide_characters() {
        assert_eq!(truncate("漢字漢字", 5), "漢字…");
        assert_eq!(width(&truncate("漢字漢字", 4)), 3);
        assert_eq!(truncate("abcdef", 6), "abcdef");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abcdef", 0), "");
    }

    #[test]
    fn wrapped_height_counts_word_wrapped_lines() {
        assert_eq!(wrapped_height("", 10), 1);
        assert_eq!(wrapped_height("one two three", 13), 1);
        assert_eq!(wrapped_height("one two three", 12), 2);
        assert_eq!(wrapped_height("abcdefghijklmnopqrstuvwxy", 10), 3);
        assert_eq!(wrapped_height("a\nb", 10), 2);
    }

    #[test]
    fn count_groups_thousands() {
        assert_eq!(count(0), "0");
        assert_eq!(count(1234), "1 234");
        assert_eq!(count(-1_234_567), "-1 234 567");
    }

    #[test]
    fn time_fits_the_width() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        assert_eq!(time(at, 40).len(), TIME_WIDTH);
        assert_eq!(time(at, 12).len(), SHORT_TIME_WIDTH);
        assert!(width(&time(at, 3)) <= 3);
    }
}
