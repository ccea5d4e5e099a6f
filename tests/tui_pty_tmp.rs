#![allow(clippy::unwrap_used)]
use xaa::config::Config;
use xaa::core::Core;
use xaa::core::model::{NewMapping, NewProvider, NewProxy, ProxyKind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "manual"]
async fn pty() {
    let dir = std::path::PathBuf::from(std::env::var("XAA_TMP").unwrap());
    let mut config = Config::default();
    config.database.url = format!("sqlite://{}", dir.join("xaa.db").display());
    config.server.log_dir = dir.join("logs");
    config.server.data_dir = dir.join("data");
    config.tui.refresh_secs = 5;
    let core = Core::open(config).await.unwrap();
    if core.list_proxies().await.unwrap().is_empty() {
        let proxy = core
            .create_proxy(NewProxy {
                name: "mcp-prod".into(),
                kind: ProxyKind::Mcp,
                ..NewProxy::default()
            })
            .await
            .unwrap();
        let p = core
            .create_provider(NewProvider {
                name: "Okta Production".into(),
                issuer: "https://idp.example".into(),
                jwks_uri: Some("https://127.0.0.1:9/k".into()),
                ..NewProvider::default()
            })
            .await
            .unwrap();
        core.create_mapping(
            proxy.id,
            NewMapping {
                idp_provider_id: p.id,
                client_id_at_idp: "0oa5".into(),
                client_id_at_resource_as: "gw-1".into(),
                allowed_scopes: vec!["openid".into()],
            },
            "seed",
        )
        .await
        .unwrap();
    }
    let read_only = std::env::var("XAA_RO").is_ok();
    let result = xaa::tui::run(
        core.clone(),
        xaa::tui::TuiOptions {
            read_only,
            server_note: Some("exchange server running on 127.0.0.1:8080".into()),
        },
    )
    .await;
    core.shutdown().await;
    std::fs::write(dir.join("result.txt"), format!("{result:?}")).unwrap();
}

#[tokio::test]
#[ignore = "manual"]
async fn perf() {
    use ratatui::{Terminal, backend::TestBackend};
    use xaa::core::model::{ClientMapping, Proxy};
    use xaa::tui::{App, AppEvent, AppOptions, JobOutput, theme::ColorMode};
    let mut app = App::new(AppOptions {
        read_only: false,
        server_note: None,
        refresh_secs: 30,
        actor: "a@b".into(),
        color: ColorMode::Color,
    });
    let proxy = Proxy {
        id: 1,
        name: "p".into(),
        kind: ProxyKind::Mcp,
        resource: None,
        require_resource: false,
        issuance_enabled: true,
        created_at: chrono::Utc::now(),
    };
    let _ = app.take_jobs();
    app.handle(AppEvent::Job(JobOutput::Proxies(Ok(vec![
        xaa::tui::jobs::ProxySummary {
            proxy: proxy.clone(),
            mapping_count: 10000,
            active_tokens: 5,
        },
    ]))));
    app.handle(AppEvent::key(crossterm::event::KeyCode::Enter));
    app.handle(AppEvent::key(crossterm::event::KeyCode::Char('2')));
    let mappings: Vec<ClientMapping> = (0..10_000)
        .map(|i| ClientMapping {
            id: i,
            proxy_id: 1,
            idp_provider_id: 1,
            idp_provider_name: "Okta Production".into(),
            client_id_at_idp: format!("0oa{i:012}"),
            client_id_at_resource_as: format!("gateway-client-{i}"),
            allowed_scopes: vec!["openid".into(), "profile".into(), "mcp:tools".into()],
            created_at: chrono::Utc::now(),
        })
        .collect();
    app.handle(AppEvent::Job(JobOutput::Mappings {
        proxy_id: 1,
        result: Ok(mappings),
    }));
    let mut terminal = Terminal::new(TestBackend::new(200, 50)).unwrap();
    for round in 0..3 {
        let start = std::time::Instant::now();
        for _ in 0..100 {
            terminal.draw(|f| app.draw(f)).unwrap();
            app.handle(AppEvent::key(crossterm::event::KeyCode::Char('j')));
        }
        println!("round {round}: {:?} per draw", start.elapsed() / 100);
    }
    app.handle(AppEvent::key(crossterm::event::KeyCode::Char('/')));
    for c in "client-99".chars() {
        app.handle(AppEvent::key(crossterm::event::KeyCode::Char(c)));
    }
    let start = std::time::Instant::now();
    for _ in 0..100 {
        terminal.draw(|f| app.draw(f)).unwrap();
    }
    println!("filtered: {:?} per draw", start.elapsed() / 100);
}
