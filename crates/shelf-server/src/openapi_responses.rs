//! Every status an operation can answer, in its OpenAPI entry.
//!
//! Clients generate their types from the document and schemathesis checks every answer against
//! it, so the answers that whole kinds of operation share are added here once, from what the
//! operation is: one that needs a session can answer 401 (and, if it changes data, 403 for a
//! cookie without CSRF proof); one with a JSON body 400, 413 and 415; one with parameters 400;
//! one whose path names a resource 404. Handlers document only what is theirs alone.

use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder};

/// Adds the shared answers to every operation of `api`.
pub fn add_standard_responses(api: &mut OpenApi) {
    for (path, item) in api.paths.paths.iter_mut() {
        let names_a_resource = path.contains('{');
        for (changes_data, operation) in operations(item) {
            let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
            let body = operation.request_body.as_ref();
            let json_body = body.is_some_and(|b| b.content.contains_key("application/json"));
            let has_parameters = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
            let mut add = |status: &str, description: &str, when: bool| {
                if when && !operation.responses.responses.contains_key(status) {
                    operation.responses.responses.insert(status.to_owned(), error(description));
                }
            };
            add("401", "unauthenticated: no valid Bearer token, session cookie or stream ticket", secured);
            add("403", "csrf_rejected: a cookie-authenticated change needs X-Shelf-Csrf or a same-origin Origin", secured && changes_data);
            add("400", "validation_failed or invalid_json: the request breaks the documented schema", json_body || has_parameters);
            add("413", "payload_too_large: the body exceeds the server's limit", body.is_some());
            add("415", "unsupported_media_type: the body's Content-Type is not the documented one", body.is_some());
            add("404", "not_found: no such resource for this user (also for ids that cannot exist)", names_a_resource);
        }
    }
}

/// The path item's operations, each with whether its method changes data.
fn operations(item: &mut PathItem) -> impl Iterator<Item = (bool, &mut Operation)> {
    [
        (false, item.get.as_mut()),
        (false, item.head.as_mut()),
        (false, item.options.as_mut()),
        (true, item.post.as_mut()),
        (true, item.put.as_mut()),
        (true, item.patch.as_mut()),
        (true, item.delete.as_mut()),
    ]
    .into_iter()
    .filter_map(|(changes, op)| op.map(|op| (changes, op)))
}

fn error(description: &str) -> RefOr<Response> {
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
    RefOr::T(ResponseBuilder::new().description(description).content("application/json", content).build())
}
