//! The binary's configuration handling, run as a user runs it.

use std::process::Command;

fn xaa() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xaa"));
    command
        .env_remove("XAA_CONFIG")
        .env_remove("XAA_ADMIN_TOKEN");
    command
}

#[test]
fn config_prints_the_defaults() {
    let output = xaa().arg("config").output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("[database]"), "{text}");
    assert!(text.contains("url = \"sqlite://data/xaa.db\""), "{text}");
}

#[test]
fn config_check_accepts_and_rejects_files() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[server]\npublic_url = \"https://gw.example\"\n").unwrap();
    let output = xaa()
        .args(["config", "--check"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[exchange]\naccess_token_lifetime_secs = 5\n").unwrap();
    let output = xaa()
        .args(["config", "--check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("exchange.access_token_lifetime_secs"),
        "{stderr}"
    );
    assert!(stderr.contains("between 60 and 86400"), "{stderr}");
}

#[test]
fn environment_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("xaa.toml");
    std::fs::write(
        &file,
        "[server]\npublic_url = \"https://from-file.example\"\n",
    )
    .unwrap();
    let output = xaa()
        .current_dir(dir.path())
        .args(["--config"])
        .arg(&file)
        .args(["stats", "--json"])
        .env("XAA_SERVER__PUBLIC_URL", "not a url")
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "the bad environment value must win over the file"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("server.public_url"), "{stderr}");
}

#[test]
fn missing_config_file_is_named() {
    let output = xaa()
        .args(["--config", "/nonexistent/xaa.toml", "stats"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/xaa.toml"), "{stderr}");
}

#[test]
fn verbs_work_on_a_fresh_store() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let output = xaa().current_dir(dir.path()).args(args).output().unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    run(&[
        "providers",
        "add",
        "--name",
        "Okta",
        "--issuer",
        "https://acme.okta.com",
    ]);
    run(&["proxies", "add", "--name", "tools", "--kind", "mcp"]);
    let created = run(&[
        "mappings",
        "add",
        "--proxy",
        "1",
        "--provider",
        "1",
        "--client-id-at-idp",
        "0oa1",
        "--client-id-at-resource-as",
        "tools-client",
        "--scopes",
        "openid mcp:tools",
        "--json",
    ]);
    let created: serde_json::Value = serde_json::from_str(&created).unwrap();
    assert!(
        created["client_secret"]
            .as_str()
            .is_some_and(|s| s.len() >= 43)
    );
    let listed: serde_json::Value =
        serde_json::from_str(&run(&["mappings", "list", "--proxy", "1", "--json"])).unwrap();
    assert_eq!(listed[0]["client_id_at_resource_as"], "tools-client");
    assert_eq!(
        listed[0]["allowed_scopes"],
        serde_json::json!(["openid", "mcp:tools"])
    );

    let output = xaa()
        .current_dir(dir.path())
        .args(["revoke", "token", "bad jti!"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("bad jti!"));
    let audit = run(&["audit", "--json"]);
    assert!(audit.contains("xaa_client_mapping_created"), "{audit}");
}
