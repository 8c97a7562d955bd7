//! Pod deletion with graceful-deletion semantics (rules G-2 to G-7), shared by the DELETE
//! endpoint, the eviction subresource and the simulated kubelet.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::meta;
use crate::resources::PODS;
use crate::store::State;

/// Decoded `DeleteOptions` (JSON or protobuf).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeleteOptions {
    /// `gracePeriodSeconds`.
    pub grace: Option<i64>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub rv: Option<String>,
    /// `dryRun` contains `All`.
    pub dry_run: bool,
    /// `propagationPolicy`.
    pub propagation: Option<String>,
}

impl DeleteOptions {
    /// Read a JSON `DeleteOptions` object (unknown keys ignored; D-0.6).
    pub fn from_json(v: &Value) -> Result<Self, ApiError> {
        if v.is_null() {
            return Ok(Self::default());
        }
        if !v.is_object() {
            return Err(ApiError::bad_request("DeleteOptions must be an object"));
        }
        let grace =
            match &v["gracePeriodSeconds"] {
                Value::Null => None,
                g => Some(g.as_i64().ok_or_else(|| {
                    ApiError::bad_request("gracePeriodSeconds must be an integer")
                })?),
            };
        let dry_run = v["dryRun"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "All"));
        Ok(DeleteOptions {
            grace,
            uid: v["preconditions"]["uid"].as_str().map(String::from),
            rv: v["preconditions"]["resourceVersion"]
                .as_str()
                .map(String::from),
            dry_run,
            propagation: v["propagationPolicy"].as_str().map(String::from),
        })
    }
}

/// Check uid/resourceVersion preconditions against the stored pod (G-7): 409 naming the Kind.
pub fn check_preconditions(obj: &Value, kind: &str, opts: &DeleteOptions) -> ApiResult<()> {
    let name = meta::name(obj);
    if let Some(uid) = &opts.uid
        && uid != meta::uid(obj)
    {
        return Err(ApiError::conflict(
            "",
            kind,
            name,
            &format!(
                "the UID in the precondition ({uid}) does not match the UID in record ({}). The object might have been deleted and then recreated",
                meta::uid(obj)
            ),
        ));
    }
    if let Some(rv) = &opts.rv
        && rv != meta::rv(obj)
    {
        return Err(ApiError::conflict(
            "",
            kind,
            name,
            &format!(
                "the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({}). The object might have been modified",
                meta::rv(obj)
            ),
        ));
    }
    Ok(())
}

fn has_finalizers(o: &Value) -> bool {
    o["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty())
}

/// Delete a pod gracefully. Returns the pod as the response body (G-3, G-4, G-5; rule 11 of §11).
pub fn delete_pod(
    st: &mut State,
    ns: &str,
    name: &str,
    opts: &DeleteOptions,
) -> ApiResult<Arc<Value>> {
    let pod = st
        .get(PODS, ns, name)
        .ok_or_else(|| ApiError::not_found("", "pods", name))?;
    check_preconditions(&pod, "Pod", opts)?;
    let forced_zero = meta::node_name(&pod).is_empty() || meta::is_terminal(&pod);
    let mut grace = opts.grace.unwrap_or_else(|| {
        pod["spec"]["terminationGracePeriodSeconds"]
            .as_i64()
            .unwrap_or(30)
    });
    let mut grace_given = opts.grace.is_some();
    if forced_zero {
        grace = 0;
        grace_given = true;
    }
    if grace < 0 {
        grace = 1;
    }
    let now = jiff::Timestamp::now();
    let mut next = (*pod).clone();
    if meta::is_terminating(&pod) {
        let old_grace = pod["metadata"]["deletionGracePeriodSeconds"].as_i64();
        match old_grace {
            Some(og) if og > 0 => {
                if !(grace_given && grace < og) {
                    return Ok(pod);
                }
                let old_ts = pod["metadata"]["deletionTimestamp"]
                    .as_str()
                    .and_then(meta::parse_time)
                    .unwrap_or(now);
                let ts = shift(shift(old_ts, og.saturating_neg()), grace);
                next["metadata"]["deletionTimestamp"] = json!(meta::fmt_time(ts));
                next["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
                if grace > 0 || has_finalizers(&next) {
                    return Ok(if opts.dry_run {
                        Arc::new(next)
                    } else {
                        st.replace(PODS, next)
                    });
                }
            }
            _ => {
                if has_finalizers(&pod) {
                    return Ok(pod);
                }
            }
        }
        if opts.dry_run {
            return Ok(Arc::new(next));
        }
        st.replace(PODS, next);
        return Ok(st.remove(PODS, ns, name).expect("pod present"));
    }
    if grace > 0 {
        let ts = shift(now, grace);
        next["metadata"]["deletionTimestamp"] = json!(meta::fmt_time(ts));
        next["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
        if let Some(g) = next["metadata"]["generation"].as_i64() {
            next["metadata"]["generation"] = json!(g + 1);
        }
        return Ok(if opts.dry_run {
            Arc::new(next)
        } else {
            st.replace(PODS, next)
        });
    }
    next["metadata"]["deletionTimestamp"] = json!(meta::fmt_time(now));
    next["metadata"]["deletionGracePeriodSeconds"] = json!(0);
    if opts.dry_run {
        return Ok(Arc::new(next));
    }
    let written = st.replace(PODS, next);
    if has_finalizers(&written) {
        return Ok(written);
    }
    Ok(st.remove(PODS, ns, name).expect("pod present"))
}

/// `from` moved by `secs` seconds, clamped to the representable range: a client may send
/// any int64 grace period (the server accepts it), so the deadline saturates instead of
/// overflowing.
fn shift(from: jiff::Timestamp, secs: i64) -> jiff::Timestamp {
    from.checked_add(jiff::SignedDuration::from_secs(secs))
        .unwrap_or(if secs > 0 {
            jiff::Timestamp::MAX
        } else {
            jiff::Timestamp::MIN
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_saturates_at_the_ends_of_time() {
        let now = jiff::Timestamp::now();
        assert_eq!(shift(now, 30).as_second(), now.as_second() + 30);
        assert_eq!(shift(now, i64::MAX), jiff::Timestamp::MAX);
        assert_eq!(shift(now, i64::MIN), jiff::Timestamp::MIN);
        assert_eq!(shift(jiff::Timestamp::MAX, 1), jiff::Timestamp::MAX);
    }
}
