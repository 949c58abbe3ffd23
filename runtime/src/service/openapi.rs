//! The OpenAPI 3.1 description of the HTTP API, served at `GET /v1/openapi.json`. Kept as a
//! JSON file beside the routes; a test checks that it parses and names every route.

pub(crate) const DOCUMENT: &str = include_str!("openapi.json");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_is_json_and_lists_every_route() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for p in [
            "/v1/ingest/{component}",
            "/v1/checks",
            "/v1/results",
            "/v1/evaluate",
            "/-/reload",
            "/metrics",
            "/healthz",
            "/",
            "/v1/openapi.json",
        ] {
            assert!(paths.contains_key(p), "{p} missing from openapi.json");
        }
    }
}
