//! The Statistics tab: the three cards (ID-JAG Tokens, JWKS Cache, Client Mappings) with every
//! figure, the revocation generation, exchanges and failures per minute, failure reasons
//! ranked, and the JWKS health of each provider. It refreshes with the app's countdown.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Sparkline, Wrap};

use super::TabContext;
use crate::core::model::{ActivityPoint, XaaStats};
use crate::tui::jobs::{Job, ProviderState, StatsSnapshot};
use crate::tui::panel::Panel;
use crate::tui::strings;
use crate::tui::table::{CellText, Column, Selection, TableView};
use crate::tui::text;
use crate::tui::theme::Theme;

/// Height of a card: four figures and the border.
const CARD_HEIGHT: u16 = 6;

const HEALTH_COLUMNS: [Column; 5] = [
    Column::left(strings::COL_PROVIDER, 32),
    Column::right(strings::COL_KEYS, 4),
    Column::left(strings::COL_LAST_FETCH, text::TIME_WIDTH),
    Column::left(strings::LABEL_EXPIRES, text::TIME_WIDTH),
    Column::left(strings::COL_LAST_ERROR, 200),
];

#[derive(Debug, Default)]
pub struct StatisticsTab {
    pub panel: Panel<StatsSnapshot>,
    health_selection: Selection,
}

impl StatisticsTab {
    pub fn refresh(&mut self, proxy_id: i64) -> Job {
        self.panel.start();
        Job::LoadStats { proxy_id }
    }

    pub fn render(&mut self, frame: &mut Frame, area: Rect, context: &TabContext) {
        let theme = context.theme;
        let layout = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(CARD_HEIGHT),
            Constraint::Fill(2),
            Constraint::Fill(1),
        ]);
        let [summary, cards, middle, health] = area.layout(&layout);
        self.render_summary(frame, summary, theme);
        let Some(snapshot) = self.panel.data() else {
            return;
        };
        render_cards(frame, cards, &snapshot.stats, theme);
        let [activity, reasons] = middle.layout(&Layout::horizontal([
            Constraint::Fill(3),
            Constraint::Fill(2),
        ]));
        render_activity(frame, activity, &snapshot.activity, theme);
        render_reasons(frame, reasons, &snapshot.failure_reasons, theme);
        render_health(
            frame,
            health,
            &snapshot.providers,
            &mut self.health_selection,
            theme,
        );
    }

    /// Draws the revocation generation, when the figures were taken, and the last refresh
    /// error.
    fn render_summary(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let width = usize::from(area.width);
        let line = if let Some(error) = self.panel.error() {
            let message = strings::refresh_failed(&text::sanitize(error));
            Line::styled(text::truncate(&message, width), theme.error)
        } else if let Some(snapshot) = self.panel.data() {
            let refreshed = text::optional_time(self.panel.updated_at(), 19, strings::NEVER);
            Line::from(vec![
                Span::styled(format!("{}: ", strings::STAT_GENERATION), theme.title),
                Span::raw(text::count(snapshot.stats.revocation_generation)),
                Span::styled(
                    format!("   {} {refreshed}", strings::STAT_REFRESHED),
                    theme.muted,
                ),
            ])
        } else {
            Line::styled(strings::LOADING, theme.muted)
        };
        frame.render_widget(Paragraph::new(line), area);
    }
}

fn render_cards(frame: &mut Frame, area: Rect, stats: &XaaStats, theme: &Theme) {
    let layout = Layout::horizontal([Constraint::Fill(1); 3]);
    let [tokens, jwks, mappings] = area.layout(&layout);
    let time_room = |area: Rect| usize::from(area.width.saturating_sub(2)).saturating_sub(13);
    let token_figures = [
        (strings::STAT_TOTAL, text::count(stats.id_jag_tokens.total)),
        (
            strings::STAT_ACTIVE,
            text::count(stats.id_jag_tokens.active),
        ),
        (
            strings::STAT_REVOKED,
            text::count(stats.id_jag_tokens.revoked),
        ),
        (
            strings::STAT_LAST_TOKEN,
            text::optional_time(
                stats.id_jag_tokens.last_token_at,
                time_room(tokens),
                strings::NEVER,
            ),
        ),
    ];
    render_card(frame, tokens, strings::CARD_TOKENS, &token_figures, theme);
    let jwks_figures = [
        (
            strings::STAT_TOTAL_PROVIDERS,
            text::count(stats.jwks_cache.total_providers),
        ),
        (
            strings::STAT_TOTAL_KEYS,
            text::count(stats.jwks_cache.total_keys),
        ),
        (
            strings::STAT_LAST_UPDATED,
            text::optional_time(
                stats.jwks_cache.last_updated,
                time_room(jwks),
                strings::NEVER,
            ),
        ),
    ];
    render_card(frame, jwks, strings::CARD_JWKS, &jwks_figures, theme);
    let mapping_figures = [
        (
            strings::STAT_TOTAL_MAPPINGS,
            text::count(stats.client_mappings.total_mappings),
        ),
        (
            strings::STAT_PROVIDERS,
            text::count(stats.client_mappings.providers),
        ),
        (
            strings::STAT_LAST_UPDATED,
            text::optional_time(
                stats.client_mappings.last_updated,
                time_room(mappings),
                strings::NEVER,
            ),
        ),
    ];
    render_card(
        frame,
        mappings,
        strings::CARD_MAPPINGS,
        &mapping_figures,
        theme,
    );
}

/// Draws a card: a titled box of `label  value` lines, values right-aligned.
fn render_card(
    frame: &mut Frame,
    area: Rect,
    title: &str,
    figures: &[(&str, String)],
    theme: &Theme,
) {
    let block = Block::bordered()
        .border_style(theme.border)
        .title(Line::styled(format!(" {title} "), theme.title));
    let width = usize::from(area.width.saturating_sub(2));
    let lines: Vec<Line> = figures
        .iter()
        .map(|(label, value)| {
            let value = text::truncate(value, width.saturating_sub(text::width(label) + 1));
            let gap = width.saturating_sub(text::width(label) + text::width(&value));
            Line::from(vec![
                Span::styled(text::truncate(label, width), theme.muted),
                Span::raw(" ".repeat(gap)),
                Span::styled(value, theme.title),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// One line of the activity chart.
struct Series<'a> {
    name: &'static str,
    data: &'a [u64],
    style: Style,
}

/// Exchanges and failures per minute as two sparklines, newest minute on the right.
fn render_activity(frame: &mut Frame, area: Rect, activity: &[ActivityPoint], theme: &Theme) {
    let block = Block::bordered()
        .border_style(theme.border)
        .title(Line::styled(
            format!(" {} ", strings::ACTIVITY_TITLE),
            theme.title,
        ));
    let inner = block.inner(area);
    frame.render_widget(block, area);

    // One column per minute: the newest minutes that fit.
    let shown = &activity[activity.len().saturating_sub(usize::from(inner.width))..];
    let succeeded: Vec<u64> = shown.iter().map(|p| p.succeeded.unsigned_abs()).collect();
    let failed: Vec<u64> = shown.iter().map(|p| p.failed.unsigned_abs()).collect();

    let layout = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Fill(1),
    ]);
    let [ok_label, ok_chart, fail_label, fail_chart] = inner.layout(&layout);
    let exchanges = Series {
        name: strings::ACTIVITY_SUCCEEDED,
        data: &succeeded,
        style: theme.exchanges,
    };
    let failures = Series {
        name: strings::ACTIVITY_FAILED,
        data: &failed,
        style: theme.failures,
    };
    render_series(frame, [ok_label, ok_chart], &exchanges, theme);
    render_series(frame, [fail_label, fail_chart], &failures, theme);
}

/// Draws a label with the last and peak values, and the sparkline under it.
fn render_series(frame: &mut Frame, areas: [Rect; 2], series: &Series, theme: &Theme) {
    let [label_area, chart_area] = areas;
    let last = series.data.last().copied().unwrap_or(0);
    let peak = series.data.iter().copied().max().unwrap_or(0);
    let label = strings::activity_label(series.name, last, peak, series.data.len());
    let line = Line::styled(
        text::truncate(&label, usize::from(label_area.width)),
        series.style,
    );
    frame.render_widget(Paragraph::new(line), label_area);
    let chart = Sparkline::default()
        .data(series.data)
        .max(peak.max(1))
        .style(series.style)
        .absent_value_style(theme.muted);
    frame.render_widget(chart, chart_area);
}

/// Rejection counts by reason code, most frequent first.
fn render_reasons(frame: &mut Frame, area: Rect, reasons: &[(String, i64)], theme: &Theme) {
    let block = Block::bordered()
        .border_style(theme.border)
        .title(Line::styled(
            format!(" {} ", strings::REASONS_TITLE),
            theme.title,
        ));
    let width = usize::from(area.width.saturating_sub(2));
    let count_width = reasons
        .iter()
        .map(|(_, count)| text::count(*count).len())
        .max()
        .unwrap_or(1);
    let lines: Vec<Line> = if reasons.is_empty() {
        vec![Line::styled(strings::NO_FAILURES, theme.muted)]
    } else {
        reasons
            .iter()
            .map(|(reason, count)| {
                let count = format!("{:>count_width$} ", text::count(*count));
                let reason = text::fit(reason, width.saturating_sub(count.len()));
                Line::from(vec![Span::styled(count, theme.failures), Span::raw(reason)])
            })
            .collect()
    };
    let body = Paragraph::new(lines)
        .block(block)
        .wrap(Wrap { trim: false });
    frame.render_widget(body, area);
}

/// Draws one row per provider: keys cached, last fetch, expiry and the last fetch error.
fn render_health(
    frame: &mut Frame,
    area: Rect,
    providers: &[ProviderState],
    selection: &mut Selection,
    theme: &Theme,
) {
    let block = Block::bordered()
        .border_style(theme.border)
        .title(Line::styled(
            format!(" {} ", strings::HEALTH_TITLE),
            theme.title,
        ));
    let cells = |state: &ProviderState| health_cells(state, theme);
    TableView {
        columns: &HEALTH_COLUMNS,
        items: providers,
        cells: &cells,
        block,
        empty: strings::NO_PROVIDERS,
        highlight: false,
    }
    .render(frame, area, selection, theme);
}

fn health_cells(state: &ProviderState, theme: &Theme) -> Vec<CellText> {
    let health = state.health.as_ref();
    let keys = health.map_or(0, |h| h.key_count);
    let time = |at: Option<chrono::DateTime<chrono::Utc>>| {
        at.map_or_else(
            || strings::NEVER.to_owned(),
            |at| text::time(at, text::TIME_WIDTH),
        )
    };
    let mut name = state.provider.name.clone();
    if !state.provider.enabled {
        name = format!("{name} ({})", strings::DISABLED);
    }
    vec![
        CellText::plain(name),
        CellText::styled(
            keys.to_string(),
            if keys == 0 { theme.warning } else { theme.text },
        ),
        CellText::plain(time(health.and_then(|h| h.fetched_at))),
        CellText::plain(time(health.and_then(|h| h.expires_at))),
        match health.and_then(|h| h.last_error.clone()) {
            Some(error) => CellText::styled(error, theme.error),
            None => CellText::styled(strings::NONE, theme.muted),
        },
    ]
}
