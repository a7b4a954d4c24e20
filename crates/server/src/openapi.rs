//! The OpenAPI document of contract v1, served at `/api/v1/openapi.json`. Paths come from
//! the handlers' annotations; this adds what applies to all of them.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "agentbox API", version = "1", description = "Chat with a coding agent that works in a sandbox of its own. Errors are `{\"error\": {\"code\", \"message\"}}`."),
    modifiers(&BearerAuth),
    components(schemas(
        agentbox_protocol::api::ErrorBody,
        agentbox_protocol::api::Health,
        agentbox_protocol::TransientEvent
    )),
    tags((name = "auth"), (name = "admin"), (name = "chats"), (name = "messages"), (name = "git"))
)]
pub struct ApiDoc;

/// The whole document: [`ApiDoc`] plus every route's annotations, as the server publishes it.
pub fn document() -> utoipa::openapi::OpenApi {
    crate::api_router().split_for_parts().1
}

/// [`document`] as pretty JSON with a final newline: what `agentbox openapi` prints and what
/// the web UI's generated types are made from (`web/src/shared/api/openapi.json`).
pub fn document_json() -> Result<String, serde_json::Error> {
    document().to_pretty_json().map(|json| json + "\n")
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build(),
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// The web UI's TypeScript types are generated from a copy of the document committed in
    /// `web/`. When the Rust types change, the copy must change with them, or the UI would be
    /// compiled against an API that no longer exists. `AGENTBOX_UPDATE_OPENAPI=1` rewrites it.
    #[test]
    fn the_web_uis_copy_of_the_document_is_current() {
        let path =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web/src/shared/api/openapi.json");
        let current = super::document_json().unwrap();
        if std::env::var_os("AGENTBOX_UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, &current).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == current,
            "{} is stale: the API changed. Regenerate it with \
             `AGENTBOX_UPDATE_OPENAPI=1 cargo test -p agentbox-server openapi` \
             (or `agentbox openapi > web/src/shared/api/openapi.json`) and commit it.",
            path.display()
        );
    }

    /// A parameter declared `in: path` that is not a `{placeholder}` of its route is a query
    /// parameter declared wrongly (`IntoParams` defaults to the path): generated clients
    /// would put it in the URL's path. Every placeholder must be declared, too.
    #[test]
    fn path_parameters_are_exactly_the_placeholders_of_their_route() {
        let json = serde_json::to_value(super::document()).unwrap();
        let mut wrong = Vec::new();
        for (route, operations) in json["paths"].as_object().unwrap() {
            let placeholders: Vec<&str> = route
                .split('/')
                .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            for (method, operation) in operations.as_object().unwrap() {
                let parameters = operation["parameters"].as_array().cloned().unwrap_or_default();
                let in_path: Vec<&str> = parameters
                    .iter()
                    .filter(|p| p["in"] == "path")
                    .filter_map(|p| p["name"].as_str())
                    .collect();
                for name in &in_path {
                    if !placeholders.contains(name) {
                        wrong.push(format!("{method} {route}: `{name}` is no placeholder"));
                    }
                }
                for name in &placeholders {
                    if !in_path.contains(name) {
                        wrong.push(format!("{method} {route}: `{{{name}}}` is not declared"));
                    }
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "path parameters that do not fit their route:\n{}",
            wrong.join("\n")
        );
    }

    /// Generated clients key operations by their id (the handler's name): two handlers of
    /// one name in different modules would make the web's types clash.
    #[test]
    fn every_operation_has_an_id_of_its_own() {
        let json = serde_json::to_value(super::document()).unwrap();
        let mut seen = std::collections::BTreeMap::new();
        let mut clashes = Vec::new();
        for (route, operations) in json["paths"].as_object().unwrap() {
            for (method, operation) in operations.as_object().unwrap() {
                let Some(id) = operation["operationId"].as_str() else { continue };
                if let Some(earlier) = seen.insert(id.to_owned(), format!("{method} {route}")) {
                    clashes.push(format!("{id}: {earlier} and {method} {route}"));
                }
            }
        }
        assert!(clashes.is_empty(), "operation ids used twice: {clashes:?}");
    }

    #[test]
    fn the_document_lists_the_public_setup_endpoint_and_chat_events() {
        let json: serde_json::Value =
            serde_json::from_str(&super::document_json().unwrap()).unwrap();
        let setup = &json["paths"]["/api/v1/setup"]["get"];
        assert!(setup.is_object(), "no /api/v1/setup");
        assert!(setup.get("security").is_none(), "setup must not need a token");
        let stream = &json["paths"]["/api/v1/chats/{chat_id}/stream"]["get"]["parameters"];
        let last_event_id =
            stream.as_array().unwrap().iter().find(|p| p["name"] == "last_event_id").unwrap();
        assert_eq!(last_event_id["in"], "query");
        assert!(json["components"]["schemas"]["EventPayload"]["oneOf"].is_array());
    }
}
