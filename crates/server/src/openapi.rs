//! The OpenAPI document of contract v1, served at `/api/v1/openapi.json`. Paths come from
//! the handlers' annotations; this adds what applies to all of them.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "agentbox API", version = "1", description = "Chat with a coding agent that works in a sandbox of its own. Errors are `{\"error\": {\"code\", \"message\"}}`."),
    modifiers(&BearerAuth),
    components(schemas(agentbox_protocol::api::ErrorBody, agentbox_protocol::api::Health)),
    tags((name = "auth"), (name = "chats"), (name = "messages"))
)]
pub struct ApiDoc;

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
