//! The authorization matrix: every route of the served OpenAPI document is called as six
//! callers, and each answer must be what the route's row below says.
//!
//! A route that is in the document but not in [`MATRIX`] fails the test, and so does a row
//! whose route is no longer served: every new route must say who may call it. To add one,
//! add a row with its access class; the classes are:
//!
//! | class | anonymous | garbage token | another user | owner | disabled user | admin |
//! |---|---|---|---|---|---|---|
//! | `Public` | passes | passes | passes | passes | passes | passes |
//! | `SignedIn` | 401 | 401 | passes | passes | 401 | passes |
//! | `Owner` (a chat's) | 401 | 401 | 404 `chat_not_found` | passes | 401 | 404 `chat_not_found` |
//! | `TaskOwner` (a task's) | 401 | 401 | 404 `task_not_found` | passes | 401 | 404 `task_not_found` |
//! | `Admin` | 401 | 401 | 403 `admin_only` | 403 `admin_only` | 401 | passes |
//!
//! "Passes" means the authorization let the request through: the answer is none of its
//! refusals (`unauthorized`, `account_disabled`, `admin_only`, `chat_not_found`, any 403);
//! a random id in the path or a wrong password may well get a 4xx of its own, which is the
//! handler's business, not the matrix's. A 401 refusal is `unauthorized` (no valid token) or
//! `account_disabled`. The owner's chat is
//! made anew for every route, so a route that deletes or changes it spoils no other row; an
//! administrator is not the owner of other people's chats. The disabled user is disabled
//! after signing in, so their token is one that worked a moment before.

// Tests may panic on what they did not expect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;

use http::{Method, StatusCode};
use serde_json::json;

use support::{Answer, App, Tokens};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    Public,
    SignedIn,
    Owner,
    TaskOwner,
    Admin,
}

use Access::{Admin, Owner, Public, SignedIn, TaskOwner};

/// Who may call each route. Keep it sorted like the OpenAPI document (by path).
const MATRIX: &[(&str, &str, Access)] = &[
    ("GET", "/api/v1/admin/audit", Admin),
    ("GET", "/api/v1/admin/invites", Admin),
    ("POST", "/api/v1/admin/invites", Admin),
    ("DELETE", "/api/v1/admin/invites/{invite_id}", Admin),
    ("GET", "/api/v1/admin/settings", Admin),
    ("PUT", "/api/v1/admin/settings", Admin),
    ("GET", "/api/v1/admin/users", Admin),
    ("POST", "/api/v1/admin/users", Admin),
    ("DELETE", "/api/v1/admin/users/{user_id}", Admin),
    ("PATCH", "/api/v1/admin/users/{user_id}", Admin),
    ("GET", "/api/v1/admin/users/{user_id}/limits", Admin),
    ("PUT", "/api/v1/admin/users/{user_id}/limits", Admin),
    ("POST", "/api/v1/admin/users/{user_id}/password", Admin),
    ("POST", "/api/v1/auth/login", Public),
    ("POST", "/api/v1/auth/logout", SignedIn),
    ("GET", "/api/v1/auth/me", SignedIn),
    ("POST", "/api/v1/auth/password", SignedIn),
    ("POST", "/api/v1/auth/refresh", Public),
    ("POST", "/api/v1/auth/register", Public),
    ("GET", "/api/v1/chats", SignedIn),
    ("POST", "/api/v1/chats", SignedIn),
    ("GET", "/api/v1/chats/{chat_id}", Owner),
    ("DELETE", "/api/v1/chats/{chat_id}", Owner),
    ("PATCH", "/api/v1/chats/{chat_id}", Owner),
    ("GET", "/api/v1/chats/{chat_id}/checkpoints", Owner),
    ("POST", "/api/v1/chats/{chat_id}/checkpoints/{checkpoint_id}/restore", Owner),
    ("GET", "/api/v1/chats/{chat_id}/files", Owner),
    ("DELETE", "/api/v1/chats/{chat_id}/files", Owner),
    ("GET", "/api/v1/chats/{chat_id}/files/content", Owner),
    ("PUT", "/api/v1/chats/{chat_id}/files/content", Owner),
    ("POST", "/api/v1/chats/{chat_id}/files/directory", Owner),
    ("POST", "/api/v1/chats/{chat_id}/files/move", Owner),
    ("GET", "/api/v1/chats/{chat_id}/files/stat", Owner),
    ("GET", "/api/v1/chats/{chat_id}/files/zip", Owner),
    ("POST", "/api/v1/chats/{chat_id}/fork", Owner),
    ("POST", "/api/v1/chats/{chat_id}/git/branch", Owner),
    ("POST", "/api/v1/chats/{chat_id}/git/commit", Owner),
    ("GET", "/api/v1/chats/{chat_id}/git/diff", Owner),
    ("POST", "/api/v1/chats/{chat_id}/git/pull", Owner),
    ("POST", "/api/v1/chats/{chat_id}/git/pull-request", Owner),
    ("POST", "/api/v1/chats/{chat_id}/git/push", Owner),
    ("GET", "/api/v1/chats/{chat_id}/git/status", Owner),
    ("GET", "/api/v1/chats/{chat_id}/messages", Owner),
    ("POST", "/api/v1/chats/{chat_id}/messages", Owner),
    ("POST", "/api/v1/chats/{chat_id}/messages/{message_id}/retry", Owner),
    ("GET", "/api/v1/chats/{chat_id}/costs", Owner),
    ("POST", "/api/v1/chats/{chat_id}/seen", Owner),
    ("GET", "/api/v1/chats/{chat_id}/permissions", Owner),
    ("GET", "/api/v1/chats/{chat_id}/permissions/rules", Owner),
    ("DELETE", "/api/v1/chats/{chat_id}/permissions/rules/{rule_id}", Owner),
    ("POST", "/api/v1/chats/{chat_id}/permissions/{request_id}", Owner),
    ("GET", "/api/v1/chats/{chat_id}/ports", Owner),
    ("POST", "/api/v1/chats/{chat_id}/ports/{port}/open", Owner),
    ("GET", "/api/v1/chats/{chat_id}/queue", Owner),
    ("POST", "/api/v1/chats/{chat_id}/queue", Owner),
    ("DELETE", "/api/v1/chats/{chat_id}/queue/{queued_id}", Owner),
    ("PATCH", "/api/v1/chats/{chat_id}/queue/{queued_id}", Owner),
    ("POST", "/api/v1/chats/{chat_id}/queue/{queued_id}/send", Owner),
    ("GET", "/api/v1/chats/{chat_id}/sandbox", Owner),
    ("POST", "/api/v1/chats/{chat_id}/sandbox/pause", Owner),
    ("POST", "/api/v1/chats/{chat_id}/sandbox/restart", Owner),
    ("POST", "/api/v1/chats/{chat_id}/sandbox/resume", Owner),
    ("GET", "/api/v1/chats/{chat_id}/stream", Owner),
    ("DELETE", "/api/v1/chats/{chat_id}/stream", Owner),
    ("GET", "/api/v1/chats/{chat_id}/terminal", Owner),
    ("GET", "/api/v1/limits", SignedIn),
    ("GET", "/api/v1/chats/{chat_id}/secrets", Owner),
    ("PUT", "/api/v1/chats/{chat_id}/secrets/{name}", Owner),
    ("DELETE", "/api/v1/chats/{chat_id}/secrets/{name}", Owner),
    ("GET", "/api/v1/secrets", SignedIn),
    ("PUT", "/api/v1/secrets/{name}", SignedIn),
    ("DELETE", "/api/v1/secrets/{name}", SignedIn),
    // Agent extensions (crates/server/src/extensions.rs).
    ("GET", "/api/v1/chats/{chat_id}/extensions/status", Owner),
    ("GET", "/api/v1/commands", SignedIn),
    ("POST", "/api/v1/commands", SignedIn),
    ("GET", "/api/v1/commands/{name}", SignedIn),
    ("PUT", "/api/v1/commands/{name}", SignedIn),
    ("DELETE", "/api/v1/commands/{name}", SignedIn),
    ("GET", "/api/v1/chats/{chat_id}/commands", Owner),
    ("POST", "/api/v1/chats/{chat_id}/commands", Owner),
    ("GET", "/api/v1/chats/{chat_id}/commands/{name}", Owner),
    ("PUT", "/api/v1/chats/{chat_id}/commands/{name}", Owner),
    ("DELETE", "/api/v1/chats/{chat_id}/commands/{name}", Owner),
    ("GET", "/api/v1/skills", SignedIn),
    ("POST", "/api/v1/skills", SignedIn),
    ("GET", "/api/v1/skills/{name}", SignedIn),
    ("PUT", "/api/v1/skills/{name}", SignedIn),
    ("DELETE", "/api/v1/skills/{name}", SignedIn),
    ("GET", "/api/v1/chats/{chat_id}/skills", Owner),
    ("POST", "/api/v1/chats/{chat_id}/skills", Owner),
    ("GET", "/api/v1/chats/{chat_id}/skills/{name}", Owner),
    ("PUT", "/api/v1/chats/{chat_id}/skills/{name}", Owner),
    ("DELETE", "/api/v1/chats/{chat_id}/skills/{name}", Owner),
    ("GET", "/api/v1/agents", SignedIn),
    ("POST", "/api/v1/agents", SignedIn),
    ("GET", "/api/v1/agents/{name}", SignedIn),
    ("PUT", "/api/v1/agents/{name}", SignedIn),
    ("DELETE", "/api/v1/agents/{name}", SignedIn),
    ("GET", "/api/v1/chats/{chat_id}/agents", Owner),
    ("POST", "/api/v1/chats/{chat_id}/agents", Owner),
    ("GET", "/api/v1/chats/{chat_id}/agents/{name}", Owner),
    ("PUT", "/api/v1/chats/{chat_id}/agents/{name}", Owner),
    ("DELETE", "/api/v1/chats/{chat_id}/agents/{name}", Owner),
    ("GET", "/api/v1/mcp-servers", SignedIn),
    ("POST", "/api/v1/mcp-servers", SignedIn),
    ("GET", "/api/v1/mcp-servers/{name}", SignedIn),
    ("PUT", "/api/v1/mcp-servers/{name}", SignedIn),
    ("DELETE", "/api/v1/mcp-servers/{name}", SignedIn),
    ("GET", "/api/v1/chats/{chat_id}/mcp-servers", Owner),
    ("POST", "/api/v1/chats/{chat_id}/mcp-servers", Owner),
    ("GET", "/api/v1/chats/{chat_id}/mcp-servers/{name}", Owner),
    ("PUT", "/api/v1/chats/{chat_id}/mcp-servers/{name}", Owner),
    ("DELETE", "/api/v1/chats/{chat_id}/mcp-servers/{name}", Owner),
    ("GET", "/api/v1/settings", SignedIn),
    ("PATCH", "/api/v1/settings", SignedIn),
    ("GET", "/api/v1/setup", Public),
    // Probes and metrics; `/metrics` with `--metrics-token` is tested in tests/ops.rs.
    ("GET", "/livez", Public),
    ("GET", "/metrics", Public),
    ("GET", "/readyz", Public),
    ("GET", "/api/v1/tasks", SignedIn),
    ("POST", "/api/v1/tasks", SignedIn),
    ("POST", "/api/v1/tasks/preview", SignedIn),
    ("GET", "/api/v1/tasks/{task_id}", TaskOwner),
    ("DELETE", "/api/v1/tasks/{task_id}", TaskOwner),
    ("PATCH", "/api/v1/tasks/{task_id}", TaskOwner),
    ("POST", "/api/v1/tasks/{task_id}/run", TaskOwner),
    ("GET", "/api/v1/tasks/{task_id}/runs", TaskOwner),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    Anonymous,
    GarbageToken,
    AnotherUser,
    Owner,
    DisabledUser,
    Admin,
}

/// What the matrix expects of one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Passes,
    Refused(StatusCode, &'static str),
}

fn expected(access: Access, caller: Caller) -> Expect {
    use Caller as C;
    let unauthorized = Expect::Refused(StatusCode::UNAUTHORIZED, "");
    let not_yours = Expect::Refused(StatusCode::NOT_FOUND, "chat_not_found");
    let admin_only = Expect::Refused(StatusCode::FORBIDDEN, "admin_only");
    let not_your_task = Expect::Refused(StatusCode::NOT_FOUND, "task_not_found");
    match (access, caller) {
        (Public, _) => Expect::Passes,
        (_, C::Anonymous | C::GarbageToken | C::DisabledUser) => unauthorized,
        (SignedIn, _) => Expect::Passes,
        (Access::Owner, C::Owner) => Expect::Passes,
        (Access::Owner, C::AnotherUser | C::Admin) => not_yours,
        (TaskOwner, C::Owner) => Expect::Passes,
        (TaskOwner, C::AnotherUser | C::Admin) => not_your_task,
        (Access::Admin, C::Admin) => Expect::Passes,
        (Access::Admin, C::AnotherUser | C::Owner) => admin_only,
    }
}

/// The codes of the refusals that authorization makes; any other answer let the caller in.
const REFUSALS: [&str; 5] =
    ["unauthorized", "account_disabled", "admin_only", "chat_not_found", "task_not_found"];

fn check(answer: &Answer, expect: Expect, what: &str) {
    let code = answer.json()["error"]["code"].as_str().unwrap_or_default().to_owned();
    match expect {
        Expect::Passes => assert!(
            !REFUSALS.contains(&code.as_str()) && answer.status != StatusCode::FORBIDDEN,
            "{what}: expected the request to pass, got {} {}",
            answer.status,
            answer.json()
        ),
        Expect::Refused(status, expected_code) => {
            assert_eq!(answer.status, status, "{what}: {}", answer.json());
            if expected_code.is_empty() {
                // 401: no valid token, or the token of a disabled account.
                assert!(
                    ["unauthorized", "account_disabled"].contains(&code.as_str()),
                    "{what}: {code}"
                );
            } else {
                assert_eq!(code, expected_code, "{what}");
            }
        }
    }
}

#[tokio::test]
async fn every_route_answers_each_caller_as_the_matrix_says() {
    let app = App::new().await;
    let admin = app.user("admin@example.com").await;
    let owner = app.user("owner@example.com").await;
    let other = app.user("other@example.com").await;
    let disabled = app.user("disabled@example.com").await;
    let answer = app
        .call(
            Method::PATCH,
            &format!("/api/v1/admin/users/{}", disabled.id),
            Some(&admin.access),
            Some(&json!({"disabled": true})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json());

    // The routes as served, not as anyone remembers them.
    let document = app.call(Method::GET, "/api/v1/openapi.json", None, None).await.json();
    let mut served = BTreeSet::new();
    for (path, operations) in document["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            served.insert((method.to_uppercase(), path.clone()));
        }
    }
    let listed: BTreeSet<_> =
        MATRIX.iter().map(|(method, path, _)| ((*method).to_owned(), (*path).to_owned())).collect();
    let missing: Vec<_> = served.difference(&listed).collect();
    assert!(missing.is_empty(), "routes without a row in the authorization matrix: {missing:?}");
    let stale: Vec<_> = listed.difference(&served).collect();
    assert!(stale.is_empty(), "rows for routes that are not served: {stale:?}");
    assert_eq!(listed.len(), MATRIX.len(), "a route has two rows");

    for &(method, path, access) in MATRIX {
        // A fresh chat of the owner per route: one that deletes it spoils no other row.
        let chat = app
            .call(Method::POST, "/api/v1/chats", Some(&owner.access), Some(&json!({})))
            .await
            .json()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        // And a task of the owner's, running in that chat.
        let task = app
            .call(
                Method::POST,
                "/api/v1/tasks",
                Some(&owner.access),
                Some(&json!({"name": "t", "prompt": "hello", "schedule": {"kind": "daily", "time": "09:00"}})),
            )
            .await
            .json()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let uri = path
            .replace("{chat_id}", &chat)
            .replace("{task_id}", &task)
            .replace("{user_id}", &uuid::Uuid::new_v4().to_string())
            .replace("{request_id}", "no-such-request")
            .replace("{port}", "8000")
            .replace(['{', '}'], "");
        // Any other id: a random UUID (the placeholder's name is gone by now).
        let uri = replace_names(&uri);
        let method: Method = method.parse().unwrap();
        let body = (method != Method::GET && method != Method::DELETE).then(|| body_for(path));
        let callers: [(Caller, Option<&Tokens>, Option<&str>); 6] = [
            (Caller::Anonymous, None, None),
            (Caller::GarbageToken, None, Some("garbage")),
            (Caller::AnotherUser, Some(&other), None),
            (Caller::DisabledUser, Some(&disabled), None),
            (Caller::Admin, Some(&admin), None),
            // Last: the owner's call may delete the chat.
            (Caller::Owner, Some(&owner), None),
        ];
        for (caller, tokens, raw) in callers {
            let token = tokens.map(|t| t.access.as_str()).or(raw);
            let answer = app.call(method.clone(), &uri, token, body.as_ref()).await;
            check(&answer, expected(access, caller), &format!("{method} {path} as {caller:?}"));
        }
    }
}

/// A body the route accepts, so that what decides the answer is who calls, not a missing
/// field (handlers may check the body before they look the chat up). Routes not listed
/// take `{}`; the owner's call may still be refused for its own reasons (a random id).
fn body_for(path: &str) -> serde_json::Value {
    // Extensions: the kind is the segment before `{name}`, or the last one.
    let mut segments = path.rsplit('/').skip_while(|segment| *segment == "{name}");
    match segments.next().unwrap_or_default() {
        "commands" => return json!({"name": "matrix", "content": "Say hello."}),
        "skills" | "agents" => {
            return json!({"name": "matrix", "description": "d", "content": "Say hello."});
        }
        "mcp-servers" => {
            return json!({"name": "matrix", "type": "http", "url": "https://example.com/mcp"});
        }
        _ => {}
    }
    match path.rsplit('/').next().unwrap_or_default() {
        "move" => json!({"from": "a.txt", "to": "b.txt"}),
        "directory" => json!({"path": "made-by-the-matrix"}),
        "messages" | "queue" => json!({"prompt": "hello"}),
        "tasks" => {
            json!({"name": "t", "prompt": "hello", "schedule": {"kind": "hourly", "minute": 5}})
        }
        "preview" => json!({"schedule": {"kind": "cron", "expression": "0 9 * * 1-5"}}),
        "fork" => json!({"message_id": uuid::Uuid::new_v4()}),
        "branch" => json!({"name": "made-by-the-matrix"}),
        "commit" => json!({"message": "made by the matrix"}),
        "pull-request" => json!({"title": "made by the matrix"}),
        "{request_id}" => json!({"approved": false}),
        "{name}" => json!({"value": "set-by-the-matrix"}),
        "login" => json!({"email": "nobody@example.com", "password": "not the password"}),
        "register" => json!({"email": "x@b@c.example", "password": "correct horse"}),
        "refresh" => json!({"refresh_token": "not a token"}),
        "users" => json!({"email": "x@b@c.example", "password": "correct horse"}),
        _ => json!({}),
    }
}

/// The ids other than the chat's and the user's: `checkpoint_id`, `rule_id`, `queued_id`,
/// `invite_id`, `message_id` become random UUIDs.
fn replace_names(uri: &str) -> String {
    ["checkpoint_id", "rule_id", "queued_id", "invite_id", "message_id"]
        .iter()
        .fold(uri.to_owned(), |uri, name| uri.replace(name, &uuid::Uuid::new_v4().to_string()))
}

#[test]
fn the_matrix_expects_what_its_table_says() {
    // The classes themselves, so that a change to `expected` is a visible decision.
    assert_eq!(
        expected(Admin, Caller::Owner),
        Expect::Refused(StatusCode::FORBIDDEN, "admin_only")
    );
    assert_eq!(
        expected(Owner, Caller::Admin),
        Expect::Refused(StatusCode::NOT_FOUND, "chat_not_found")
    );
    assert_eq!(
        expected(SignedIn, Caller::DisabledUser),
        Expect::Refused(StatusCode::UNAUTHORIZED, "")
    );
    assert_eq!(
        expected(TaskOwner, Caller::AnotherUser),
        Expect::Refused(StatusCode::NOT_FOUND, "task_not_found")
    );
    assert_eq!(expected(Public, Caller::GarbageToken), Expect::Passes);
}
