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
