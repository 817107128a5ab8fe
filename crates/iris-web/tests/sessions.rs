//! Sessions outlive a restart (an update, a power cut), are kept only as hashes, and a password
//! change ends all of them, before and after a restart.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn a_restart_logs_nobody_out_and_a_password_change_logs_everyone_out() {
    let p = panel();
    let owner = owner(&p).await;
    let stored = std::fs::read_to_string(p.dir.path().join("panel.json")).unwrap();
    let id = owner.cookie.trim_start_matches("iris_session=");
    assert!(stored.contains("\"sessions\"") && !stored.contains(id), "the cookie is stored as a hash only: {stored}");

    let after = restarted(&p);
    assert_eq!(send(&after, owner.req("GET", "/api/status", None)).await.status, 200, "logged out by a restart");
    assert_eq!(send(&after, owner.req("POST", "/api/tokens", Some(json!({ "name": "x" })))).await.status, 200, "the CSRF token was lost");
    let logout = send(&after, owner.req("POST", "/api/logout", None)).await;
    assert_eq!(logout.status, 200);
    assert_eq!(send(&restarted(&p), owner.req("GET", "/api/status", None)).await.status, 401, "a logout did not last");

    let second = {
        let r = send(&after, post_json("/api/login", json!({ "password": PASSWORD }))).await;
        browser_from(&after, &r.header("set-cookie")).await
    };
    let r = send(&after, second.req("POST", "/api/password", Some(json!({ "current": PASSWORD, "password": "a new password" })))).await;
    assert_eq!(r.status, 200);
    let changer = browser_from(&after, &r.header("set-cookie")).await;
    let again = restarted(&p);
    assert_eq!(send(&again, second.req("GET", "/api/status", None)).await.status, 401, "an old session came back");
    assert_eq!(send(&again, changer.req("GET", "/api/status", None)).await.status, 200);
}
