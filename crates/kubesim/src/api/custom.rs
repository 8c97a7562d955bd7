//! What writes of CustomResourceDefinitions and of custom resources do beyond the generic
//! handlers: CRD validation and the status the real server's controllers give a CRD; a custom
//! resource's schema (defaults, pruning, validation), its `/status` and generation rules, and
//! the patch types the real server accepts for it.

use serde_json::Value;

use super::Target;
use crate::crd;
use crate::error::{ApiError, ApiResult};
use crate::meta;
use crate::resources::{CRDS, Resource};
use crate::schema;
use crate::store::State;

/// The patch types the real server accepts for custom resources (no strategic merge patch: a
/// custom resource has no Go struct with patch strategies).
pub const CUSTOM_PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
];

/// Check an object about to be stored (created, or updated from `old`): a CRD's names and
/// versions; a custom resource against its schema, after the schema's defaults and pruning.
pub fn admit(t: &Target, obj: &mut Value, old: Option<&Value>) -> ApiResult<()> {
    if t.res == CRDS {
        return crd::validate(obj);
    }
    let Some(def) = &t.crd else {
        return Ok(());
    };
    let Some(s) = &def.schema else {
        return Ok(());
    };
    schema::default(s, obj);
    let causes = schema::validate(s, obj, old);
    if causes.is_empty() {
        return Ok(());
    }
    let c: Vec<(&str, &str, String)> = causes
        .iter()
        .map(|c| (c.reason, c.field.as_str(), c.message.clone()))
        .collect();
    Err(ApiError::invalid(
        &def.kind,
        &def.group,
        meta::name(obj),
        &c,
    ))
}

/// After a write: the CRD controllers' status on a created or changed CRD (the answer to the
/// write is the object as written before it, as from the real server).
pub fn after_write(st: &mut State, t: &Target, written: &Value, dry_run: bool) {
    if t.res == CRDS && !dry_run && t.sub.is_none() {
        crd::establish(st, meta::name(written));
    }
}

/// The generation rule of custom resources: bumped on any change outside `metadata` (and
/// outside `status` when the status subresource is enabled).
pub fn spec_changed(r: &Resource, old: &Value, next: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("metadata");
            m.remove("apiVersion");
            m.remove("kind");
            if r.subresources.contains(&"status") {
                m.remove("status");
            }
        }
        v
    };
    strip(old) != strip(next)
}
