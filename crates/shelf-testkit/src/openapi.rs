//! The server's routes as its OpenAPI document lists them, so route-wide tests (AU4, ED2) cover
//! every route there is, including ones added later.

use reqwest::Method;

use crate::Api;

/// One operation of the document.
#[derive(Debug, Clone)]
pub struct Operation {
    pub id: String,
    pub method: Method,
    /// The templated path, e.g. `/api/materials/{id}`.
    pub path: String,
    /// Whether the document says it needs credentials.
    pub secured: bool,
}

impl Operation {
    /// The path with each parameter filled with a value of the right shape (a fresh UUID, or 64
    /// hex digits for a SHA-256) that names nothing that exists.
    pub fn example_path(&self) -> String {
        fill_path(&self.path, |name| if name == "sha256" { "ab".repeat(32) } else { uuid::Uuid::new_v4().to_string() })
    }

    /// The path with every parameter replaced by `value`.
    pub fn path_with(&self, value: &str) -> String {
        fill_path(&self.path, |_| value.to_owned())
    }
}

/// `template` with each `{name}` replaced by `value(name)`.
pub fn fill_path(template: &str, mut value: impl FnMut(&str) -> String) -> String {
    let mut path = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').map_or(rest.len(), |e| start + e);
        path.push_str(&rest[..start]);
        path.push_str(&value(&rest[start + 1..end]));
        rest = &rest[(end + 1).min(rest.len())..];
    }
    path.push_str(rest);
    path
}

/// Every operation of `/api/openapi.json`, in document order.
pub async fn openapi_operations(api: &Api) -> Vec<Operation> {
    let document = api.call(Method::GET, "/api/openapi.json", None, None).await.body;
    let paths = document["paths"].as_object().expect("the document has paths");
    let mut operations = Vec::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("a path item is an object") {
            let Ok(method) = method.to_uppercase().parse::<Method>() else { continue };
            let secured = operation["security"].as_array().is_some_and(|schemes| !schemes.is_empty());
            let id = operation["operationId"].as_str().unwrap_or_default().to_owned();
            operations.push(Operation { id, method, path: path.clone(), secured });
        }
    }
    operations
}
