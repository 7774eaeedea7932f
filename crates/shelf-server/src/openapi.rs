//! Route table and the OpenAPI document generated from the handlers' annotations.

use axum::Router;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::handlers::{account, attachments, auth, devices, health, library, materials, progress, push, sync, uploads};
use crate::realtime::{sse, ws};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Shelf", description = "Study library sync: accounts, device sessions, materials, progress, library version and change feed."),
    modifiers(&SecuritySchemes),
    components(schemas(shelf_api::ErrorCode))
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
        components.add_security_scheme("cookie", SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("shelf_session"))));
        components.add_security_scheme("ticket", SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::new("ticket"))));
    }
}

/// Every route, plus `/api/openapi.json` and the Swagger UI at `/api/docs` (assets vendored,
/// so the page works offline).
pub fn router() -> Router<AppState> {
    let (router, mut api) = routes().split_for_parts();
    crate::openapi_responses::add_standard_responses(&mut api);
    router.merge(SwaggerUi::new("/api/docs").url("/api/openapi.json", api))
}

/// The document served at `/api/openapi.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut api = routes().split_for_parts().1;
    crate::openapi_responses::add_standard_responses(&mut api);
    api
}

fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(account::change_password))
        .routes(routes!(account::delete))
        .routes(routes!(devices::list))
        .routes(routes!(devices::revoke))
        .routes(routes!(materials::create, materials::list))
        .routes(routes!(materials::get, materials::update, materials::delete))
        .routes(routes!(progress::put, progress::delete))
        .routes(routes!(library::version))
        .routes(routes!(library::changes))
        .routes(routes!(uploads::options, uploads::create))
        .routes(routes!(uploads::head, uploads::patch, uploads::terminate))
        .routes(routes!(uploads::blob))
        .routes(routes!(attachments::attach, attachments::list))
        .routes(routes!(attachments::detach))
        .routes(routes!(attachments::content))
        .routes(routes!(sync::apply))
        .routes(routes!(sync::rejected))
        .routes(routes!(sync::rejected_one))
        .routes(routes!(sync::conflicts))
        .routes(routes!(sync::resolve))
        .routes(routes!(sse::events))
        .routes(routes!(sse::ticket))
        .routes(routes!(ws::upgrade))
        .routes(routes!(push::vapid_public_key))
        .routes(routes!(push::subscribe, push::unsubscribe))
}
