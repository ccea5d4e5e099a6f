//! Shared fixtures of the dashboard tests. A core runs on a real SQLite store in a temporary
//! directory, and an `App` driven by synthetic key events runs its jobs against that core. A
//! text view of a `TestBackend` buffer serves content and alignment checks.

#![allow(dead_code, clippy::unwrap_used)]

use chrono::{Duration, Utc};
use crossterm::event::{KeyCode, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use tempfile::TempDir;
use unicode_width::UnicodeWidthStr;
use xaa::config::Config;
use xaa::core::Core;
use xaa::core::model::{
    AuditEventType, NewAuditEvent, NewMapping, NewProvider, NewProxy, Provider, Proxy, ProxyKind,
};
use xaa::core::store::{ExchangeWrite, NewAccessToken};
use xaa::tui::theme::ColorMode;
use xaa::tui::{App, AppEvent, AppOptions, jobs};

/// The operator recorded by the dashboard in these tests.
pub const ACTOR: &str = "tester@gateway";

/// Rounds of "run the queued jobs, feed their results" before `settle` gives up.
const SETTLE_ROUNDS: usize = 20;

/// A dashboard on a fresh store.
pub struct Harness {
    pub core: Core,
    pub app: App,
    _dir: TempDir,
}

impl Harness {
    /// Opens a core on a new SQLite file and starts an app on it, without running its jobs.
    pub async fn new(read_only: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.database.url = format!("sqlite://{}", dir.path().join("xaa.db").display());
        config.server.log_dir = dir.path().join("logs");
        config.server.data_dir = dir.path().join("data");
        let core = Core::open(config).await.unwrap();
        let app = App::new(options(read_only));
        Self {
            core,
            app,
            _dir: dir,
        }
    }

    /// Runs the app's queued jobs against the core and feeds back their results, until no job
    /// is left.
    pub async fn settle(&mut self) {
        for _ in 0..SETTLE_ROUNDS {
            let queued = self.app.take_jobs();
            if queued.is_empty() {
                return;
            }
            for job in queued {
                let output = jobs::execute(&self.core, job).await;
                self.app.handle(AppEvent::Job(output));
            }
        }
        panic!("the app kept queuing jobs for {SETTLE_ROUNDS} rounds");
    }

    /// Presses a key and settles.
    pub async fn press(&mut self, code: KeyCode) {
        self.app.handle(AppEvent::key(code));
        self.settle().await;
    }

    /// Presses a character key and settles.
    pub async fn press_char(&mut self, c: char) {
        self.press(KeyCode::Char(c)).await;
    }

    /// Presses Ctrl plus a character key.
    pub async fn press_ctrl(&mut self, c: char) {
        self.app
            .handle(AppEvent::key_with(KeyCode::Char(c), KeyModifiers::CONTROL));
        self.settle().await;
    }

    /// Types text one key at a time.
    pub async fn type_text(&mut self, text: &str) {
        for c in text.chars() {
            self.app.handle(AppEvent::key(KeyCode::Char(c)));
        }
        self.settle().await;
    }

    /// Draws the app into a test terminal of the given size.
    pub fn render(&mut self, width: u16, height: u16) -> Screen {
        render(&mut self.app, width, height)
    }

    /// Creates a proxy.
    pub async fn proxy(&self, name: &str) -> Proxy {
        self.core
            .create_proxy(NewProxy {
                name: name.into(),
                kind: ProxyKind::Mcp,
                ..NewProxy::default()
            })
            .await
            .unwrap()
    }

    /// Creates a provider whose key fetches go to a closed loopback port and fail at once.
    pub async fn provider(&self, name: &str) -> Provider {
        self.core
            .create_provider(NewProvider {
                name: name.into(),
                issuer: format!("https://idp.example/{}", name.replace(' ', "-")),
                jwks_uri: Some("https://127.0.0.1:9/keys".into()),
                ..NewProvider::default()
            })
            .await
            .unwrap()
    }

    /// Creates a mapping through the core (as another operator would).
    pub async fn mapping(&self, proxy: &Proxy, provider: &Provider, client: &str) {
        let new = NewMapping {
            idp_provider_id: provider.id,
            client_id_at_idp: client.into(),
            client_id_at_resource_as: format!("{client}-as"),
            allowed_scopes: vec!["openid".into(), "mcp:tools".into()],
        };
        self.core
            .create_mapping(proxy.id, new, "seed")
            .await
            .unwrap();
    }

    /// Records a redeemed ID-JAG, as the exchange would.
    pub async fn token(&self, proxy: &Proxy, provider: &Provider, jti: &str, subject: &str) {
        let now = Utc::now();
        let write = ExchangeWrite {
            idp_provider_id: provider.id,
            proxy_id: proxy.id,
            jti: jti.into(),
            subject: subject.into(),
            client_id: "idp-client".into(),
            client_id_at_resource_as: "as-client".into(),
            scopes: vec!["mcp:tools".into()],
            issued_at: now,
            expires_at: now + Duration::minutes(30),
            seen_at: now,
            allow_reuse: false,
            access_token: NewAccessToken {
                jti: format!("at-{jti}"),
                audience: "https://mcp.example/".into(),
                issued_at: now,
                expires_at: now + Duration::minutes(5),
            },
            success_audit: Vec::new(),
        };
        self.core.store().record_exchange(write).await.unwrap();
    }

    /// Appends an audit event with one free-text field.
    pub async fn audit(&self, field: &str, value: &str) {
        let mut fields = serde_json::Map::new();
        fields.insert(field.into(), value.into());
        let event = NewAuditEvent {
            event_type: AuditEventType::XaaTokenValidationFailed,
            actor: "exchange".into(),
            proxy_id: None,
            idp_provider_id: None,
            reason_code: Some("signature_invalid".into()),
            fields,
        };
        self.core.store().append_audit(vec![event]).await.unwrap();
    }
}

pub fn options(read_only: bool) -> AppOptions {
    AppOptions {
        read_only,
        server_note: Some("exchange server running on 127.0.0.1:8080".into()),
        refresh_secs: 30,
        actor: ACTOR.into(),
        color: ColorMode::NoColor,
    }
}

/// Draws an app into a `TestBackend`.
pub fn render(app: &mut App, width: u16, height: u16) -> Screen {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| app.draw(frame)).unwrap();
    Screen::from_buffer(terminal.backend().buffer())
}

/// The text of a drawn buffer, one string per row, with the column of every character.
pub struct Screen {
    pub rows: Vec<Row>,
    pub width: u16,
    pub height: u16,
}

/// One row: its text and, per character, the terminal column it starts at.
pub struct Row {
    pub text: String,
    columns: Vec<(usize, u16)>,
}

impl Screen {
    /// Reads a buffer; the blank cell after a wide character is skipped, so the text reads as
    /// typed while columns stay exact.
    pub fn from_buffer(buffer: &Buffer) -> Self {
        let area = buffer.area;
        let mut rows = Vec::new();
        for y in area.top()..area.bottom() {
            let mut text = String::new();
            let mut columns = Vec::new();
            let mut skip = 0;
            for x in area.left()..area.right() {
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                let symbol = buffer[(x, y)].symbol();
                columns.push((text.len(), x));
                text.push_str(symbol);
                skip = symbol.width().saturating_sub(1);
            }
            rows.push(Row { text, columns });
        }
        Self {
            rows,
            width: area.width,
            height: area.height,
        }
    }

    pub fn contains(&self, needle: &str) -> bool {
        self.rows.iter().any(|row| row.text.contains(needle))
    }

    /// Returns the (column, row) where `needle` first starts.
    pub fn find(&self, needle: &str) -> Option<(u16, usize)> {
        self.rows.iter().enumerate().find_map(|(y, row)| {
            row.text
                .find(needle)
                .map(|offset| (row.column_of(offset), y))
        })
    }

    /// Returns the text of the whole screen, for failure messages.
    pub fn dump(&self) -> String {
        self.rows
            .iter()
            .map(|row| row.text.trim_end())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Asserts that `needle` is on screen, printing the screen when it is not.
    pub fn assert_contains(&self, needle: &str) {
        assert!(
            self.contains(needle),
            "'{needle}' is not on the {}x{} screen:\n{}",
            self.width,
            self.height,
            self.dump()
        );
    }

    /// Asserts that `needle` is not on screen.
    pub fn assert_lacks(&self, needle: &str) {
        assert!(
            !self.contains(needle),
            "'{needle}' is on the {}x{} screen:\n{}",
            self.width,
            self.height,
            self.dump()
        );
    }

    /// Returns the column where `needle` starts, asserting it is on screen.
    pub fn column_of(&self, needle: &str) -> u16 {
        self.find(needle)
            .unwrap_or_else(|| panic!("'{needle}' is not on screen:\n{}", self.dump()))
            .0
    }
}

impl Row {
    fn column_of(&self, byte_offset: usize) -> u16 {
        self.columns
            .iter()
            .rev()
            .find(|(offset, _)| *offset <= byte_offset)
            .map_or(0, |(_, x)| *x)
    }
}
