#![allow(clippy::unwrap_used)]
mod tui_common;
use crossterm::event::KeyCode;
use tui_common::Harness;

#[tokio::test]
async fn dump() {
    let mut h = Harness::new(false).await;
    let proxy = h.proxy("mcp-prod").await;
    let okta = h.provider("Okta Production").await;
    h.mapping(&proxy, &okta, "existing-client").await;
    h.settle().await;
    h.press(KeyCode::Enter).await;
    h.press_char('3').await;
    h.press(KeyCode::Enter).await;
    h.type_text("no").await;
    println!("{}\n", h.render(80, 24).dump());
    h.type_text(" a jti!").await;
    let d = format!("{:?}", h.app);
    let i = d.find("token_form").unwrap();
    println!("{}", &d[i..i + 1500]);
    println!("{}\n", h.render(80, 24).dump());
}
