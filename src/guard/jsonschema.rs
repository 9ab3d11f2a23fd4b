//! `validation/json-schema`: the request body checked against a JSON Schema before any backend
//! is called (krakend-jsonschema), compiled once at plan time.
//!
//! KrakenD: an empty or malformed body, or one the schema rejects, is a 400; the body is the
//! error text only with `router.return_error_msg` (lura's error handler). A schema that does not
//! compile is only logged by KrakenD and the endpoint then runs unvalidated; here it is a
//! `check` error. The `jsonschema` crate is built without its remote or file resolvers, so a
//! `$ref` can never make the gateway fetch anything: an unresolvable one fails to compile.

use serde_json::Value;

pub const NS: &str = "validation/json-schema";

/// KrakenD's texts for a body it cannot validate (krakend-jsonschema's `malformedError`).
pub const EMPTY_BODY: &str = "could not validate an empty body";
pub const MALFORMED_BODY: &str = "could not validate a malformed body";

/// A compiled schema.
pub struct BodySchema {
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for BodySchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BodySchema")
    }
}

impl BodySchema {
    /// Compile the namespace's value (the schema itself).
    pub fn compile(schema: &Value) -> Result<BodySchema, String> {
        if !(schema.is_object() || schema.is_boolean()) {
            return Err("the JSON schema must be an object (or a boolean)".into());
        }
        jsonschema::validator_for(schema)
            .map(|validator| BodySchema { validator })
            .map_err(|e| format!("the JSON schema does not compile: {e}"))
    }

    /// `Err(text)` when the body is rejected: each violation as `- path: message`, as
    /// KrakenD lists them (the messages are the `jsonschema` crate's, not gojsonschema's).
    pub fn check(&self, body: &[u8]) -> Result<(), String> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(EMPTY_BODY.into());
        }
        let instance: Value =
            serde_json::from_slice(body).map_err(|_| MALFORMED_BODY.to_string())?;
        let errs: Vec<String> = self
            .validator
            .iter_errors(&instance)
            .map(|e| {
                let path = e.instance_path().to_string();
                let path = if path.is_empty() {
                    "(root)".to_string()
                } else {
                    path
                };
                format!("- {path}: {e}")
            })
            .collect();
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs.join("\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_are_checked_against_the_schema() {
        let s = BodySchema::compile(&json!({"type": "object", "required": ["a"],
            "properties": {"a": {"type": "number"}}}))
        .unwrap();
        assert!(s.check(br#"{"a": 1}"#).is_ok());
        let e = s.check(br#"{"a": "x"}"#).unwrap_err();
        assert!(e.starts_with("- /a: "), "{e}");
        assert!(s.check(b"{}").unwrap_err().starts_with("- (root): "));
        assert_eq!(s.check(b"").unwrap_err(), EMPTY_BODY);
        assert_eq!(s.check(b"{").unwrap_err(), MALFORMED_BODY);
    }

    #[test]
    fn a_schema_that_does_not_compile_or_points_outside_is_refused() {
        assert!(BodySchema::compile(&json!({"type": 12})).is_err());
        assert!(BodySchema::compile(&json!({"$ref": "https://example.com/s.json"})).is_err());
        assert!(BodySchema::compile(&json!("number")).is_err());
    }
}
