//! Kubernetes `Status` errors shaped exactly like kube-apiserver's (rules D-0.1, D-0.2, D-0.3).

use serde_json::{Map, Value, json};

/// One API error: rendered as a `v1 Status` body with the HTTP code equal to `code`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status code, repeated in the body's `code`.
    pub code: u16,
    /// `reason` (omitted from the body when empty, e.g. the multiple-PDB 500).
    pub reason: String,
    /// Human-readable message.
    pub message: String,
    /// `details` object (already shaped), if any.
    pub details: Option<Value>,
}

/// Build the `<gr>` string of error messages: `resource` for core, `resource.group` otherwise.
pub fn group_resource(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

fn details(name: &str, group: &str, kind: &str) -> Value {
    let mut d = Map::new();
    if !name.is_empty() {
        d.insert("name".into(), json!(name));
    }
    if !group.is_empty() {
        d.insert("group".into(), json!(group));
    }
    d.insert("kind".into(), json!(kind));
    Value::Object(d)
}

impl ApiError {
    /// A free-form error with the given code/reason/message and no details.
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason: reason.into(),
            message: message.into(),
            details: None,
        }
    }

    /// 404 `<gr> "<name>" not found`.
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        ApiError {
            code: 404,
            reason: "NotFound".into(),
            message: format!("{} \"{name}\" not found", group_resource(group, resource)),
            details: Some(details(name, group, resource)),
        }
    }

    /// 409 `<gr> "<name>" already exists`.
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        ApiError {
            code: 409,
            reason: "AlreadyExists".into(),
            message: format!(
                "{} \"{name}\" already exists",
                group_resource(group, resource)
            ),
            details: Some(details(name, group, resource)),
        }
    }

    /// 409 `Operation cannot be fulfilled on <gr> "<name>": <detail>`. `resource` may be a Kind (G-7).
    pub fn conflict(group: &str, resource: &str, name: &str, detail: &str) -> Self {
        ApiError {
            code: 409,
            reason: "Conflict".into(),
            message: format!(
                "Operation cannot be fulfilled on {} \"{name}\": {detail}",
                group_resource(group, resource)
            ),
            details: Some(details(name, group, resource)),
        }
    }

    /// The optimistic-lock conflict of an update with a stale resourceVersion (U-2).
    pub fn stale(group: &str, resource: &str, name: &str) -> Self {
        Self::conflict(
            group,
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 403 `<gr> "<name>" is forbidden: <detail>`.
    pub fn forbidden(group: &str, resource: &str, name: &str, detail: &str) -> Self {
        ApiError {
            code: 403,
            reason: "Forbidden".into(),
            message: format!(
                "{} \"{name}\" is forbidden: {detail}",
                group_resource(group, resource)
            ),
            details: Some(details(name, group, resource)),
        }
    }

    /// 403 from namespace lifecycle admission for a terminating namespace (E-2, U-1).
    pub fn namespace_terminating(group: &str, resource: &str, name: &str, ns: &str) -> Self {
        let mut e = Self::forbidden(
            group,
            resource,
            name,
            &format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ),
        );
        if let Some(Value::Object(d)) = e.details.as_mut() {
            d.insert(
                "causes".into(),
                json!([{"reason":"NamespaceTerminating","message":format!("namespace {ns} is being terminated"),"field":"metadata.namespace"}]),
            );
        }
        e
    }

    /// 422 `<Kind>.<group> "<name>" is invalid: <field>: <detail>` with one cause.
    pub fn invalid(kind: &str, group: &str, name: &str, causes: &[(&str, &str, String)]) -> Self {
        let qualified = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let text: Vec<String> = causes.iter().map(|(_, f, m)| format!("{f}: {m}")).collect();
        let text = if text.len() == 1 {
            text[0].clone()
        } else {
            format!("[{}]", text.join(", "))
        };
        let causes: Vec<Value> = causes
            .iter()
            // A cause's message is the field error without its field (`ErrorBody`).
            .map(|(r, f, m)| json!({"reason": r, "message": m, "field": f}))
            .collect();
        let mut d = details(name, group, kind);
        d["causes"] = Value::Array(causes);
        ApiError {
            code: 422,
            reason: "Invalid".into(),
            message: format!("{qualified} \"{name}\" is invalid: {text}"),
            details: Some(d),
        }
    }

    /// 400 BadRequest with free text.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 500 `Internal error occurred: <text>`.
    pub fn internal(text: &str) -> Self {
        ApiError {
            code: 500,
            reason: "InternalError".into(),
            message: format!("Internal error occurred: {text}"),
            details: Some(json!({"causes":[{"message": text}]})),
        }
    }

    /// 410 Expired with free text.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 415 for an unsupported patch/body content type.
    pub fn unsupported_media(accepted: &[&str]) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
        )
    }

    /// 404 for a path that names no known resource.
    pub fn path_not_found() -> Self {
        let mut e = Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
        e.details = Some(json!({}));
        e
    }

    /// 405 for a verb a resource does not support.
    pub fn method_not_allowed(method: &str) -> Self {
        let mut e = Self::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({method})"),
        );
        e.details = Some(json!({}));
        e
    }

    /// Add `retryAfterSeconds` to the details (the HTTP layer then sends `Retry-After`).
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        let d = self.details.get_or_insert_with(|| json!({}));
        if let Value::Object(m) = d {
            m.insert("retryAfterSeconds".into(), json!(seconds));
        }
        self
    }

    /// `details.retryAfterSeconds`, if set and positive.
    pub fn retry_after(&self) -> Option<u64> {
        self.details
            .as_ref()?
            .get("retryAfterSeconds")?
            .as_u64()
            .filter(|s| *s > 0)
    }

    /// The `v1 Status` body.
    pub fn to_status(&self) -> Value {
        let mut m = Map::new();
        m.insert("kind".into(), json!("Status"));
        m.insert("apiVersion".into(), json!("v1"));
        m.insert("metadata".into(), json!({}));
        m.insert("status".into(), json!("Failure"));
        m.insert("message".into(), json!(self.message));
        if !self.reason.is_empty() {
            m.insert("reason".into(), json!(self.reason));
        }
        if let Some(d) = &self.details {
            m.insert("details".into(), d.clone());
        }
        m.insert("code".into(), json!(self.code));
        Value::Object(m)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ApiError {}

/// Result type of every API operation.
pub type ApiResult<T> = Result<T, ApiError>;
