//! One eviction (or delete) attempt, with a body kdrain builds itself, and the typed outcome of
//! every answer the API server can give.

use std::time::Duration;

use kube::api::{DeleteParams, PostParams, Preconditions};
use kube::client::Body;
use kube::core::Status;

use crate::error::is_namespace_terminating;
use crate::events::PodRef;
use crate::options::DryRun;
use crate::requests::Requests;

/// The outcome of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// Accepted (201 for an eviction, 200 for a delete): the pod now terminates.
    Accepted,
    /// A server dry run passed.
    DryRunPassed,
    /// 404: the pod (or its namespace) is gone.
    Gone,
    /// 409 on the UID precondition: the name now belongs to another pod, so this one is gone.
    Replaced,
    /// Refused by a disruption budget (429 with a `DisruptionBudget` cause, 500 for a pod under
    /// several budgets, 403 for a budget in a broken state).
    Blocked {
        /// Budget names parsed from the causes (empty when the server names none).
        budgets: Vec<String>,
        /// The causes in words ("The disruption budget web needs 2 healthy pods and has 2 currently").
        cause: String,
        /// The server's message.
        message: String,
        /// Retry-After / retryAfterSeconds, when given.
        retry_after: Option<Duration>,
        /// Several budgets cover the pod (HTTP 500).
        multiple: bool,
    },
    /// 429 without a budget cause (API priority and fairness), or 503 with Retry-After.
    Throttled {
        /// How long the server asked to wait.
        retry_after: Option<Duration>,
        /// The server's message.
        message: String,
    },
    /// 403 NamespaceTerminating: the namespace controller will delete the pod.
    NamespaceTerminating {
        /// The server's message.
        message: String,
    },
    /// 403 for lack of permission: retrying will not help.
    Forbidden {
        /// The server's message.
        message: String,
    },
    /// 400/422 and similar: the request itself is wrong.
    Rejected {
        /// HTTP code.
        code: u16,
        /// The server's message.
        message: String,
    },
    /// Other errors and transport failures: retried with backoff.
    Transient {
        /// HTTP code, if an answer came.
        code: Option<u16>,
        /// What went wrong.
        message: String,
    },
}

/// The Eviction body: policy/v1 with `deleteOptions` (camelCase, unlike kube's `EvictParams`),
/// a UID precondition, the grace period and `dryRun`.
pub(crate) fn eviction_body(pod: &PodRef, grace: Option<i64>, dry: DryRun) -> serde_json::Value {
    let mut opts = serde_json::json!({ "preconditions": { "uid": pod.uid } });
    if let Some(g) = grace {
        opts["gracePeriodSeconds"] = g.into();
    }
    if dry == DryRun::Server {
        opts["dryRun"] = serde_json::json!(["All"]);
    }
    serde_json::json!({
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": { "name": pod.name, "namespace": pod.namespace },
        "deleteOptions": opts,
    })
}

/// The longest Retry-After kdrain takes from a server (one hour).
pub(crate) const MAX_RETRY_AFTER_SECS: u64 = 3600;

fn budget_name(cause: &str) -> Option<String> {
    let rest = cause.strip_prefix("The disruption budget ")?;
    let end = rest.find(" needs ").or_else(|| rest.find(" is still"))?;
    Some(rest[..end].to_string())
}

/// Maps an answer (HTTP code, Retry-After header, body) to an outcome.
pub(crate) fn classify(
    code: u16,
    retry_after_header: Option<u64>,
    body: &[u8],
    is_delete: bool,
) -> Attempt {
    if (200..300).contains(&code) {
        return Attempt::Accepted;
    }
    let status: Option<Status> = serde_json::from_slice(body).ok();
    let message = status
        .as_ref()
        .map(|s| s.message.clone())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    let retry_after = retry_after_header
        .or_else(|| {
            status
                .as_ref()
                .and_then(|s| s.details.as_ref())
                .map(|d| u64::from(d.retry_after_seconds))
                .filter(|s| *s > 0)
        })
        // a hostile or absurd value must not overflow the clock
        .map(|s| Duration::from_secs(s.min(MAX_RETRY_AFTER_SECS)));
    let causes: Vec<&str> = status
        .as_ref()
        .and_then(|s| s.details.as_ref())
        .map(|d| {
            d.causes
                .iter()
                .filter(|c| c.reason == "DisruptionBudget")
                .map(|c| c.message.as_str())
                .collect()
        })
        .unwrap_or_default();
    match code {
        404 => Attempt::Gone,
        409 if message.contains("UID in precondition")
            || message.contains("UID in the precondition") =>
        {
            Attempt::Replaced
        }
        409 => Attempt::Transient {
            code: Some(code),
            message,
        },
        429 if !causes.is_empty() => Attempt::Blocked {
            budgets: causes.iter().filter_map(|c| budget_name(c)).collect(),
            cause: causes.join("; "),
            message,
            retry_after,
            multiple: false,
        },
        429 => Attempt::Throttled {
            retry_after,
            message,
        },
        500 if !is_delete && message.contains("more than one PodDisruptionBudget") => {
            Attempt::Blocked {
                budgets: Vec::new(),
                cause: "the pod is covered by more than one disruption budget".into(),
                message,
                retry_after: None,
                multiple: true,
            }
        }
        403 if status.as_ref().is_some_and(is_namespace_terminating) => {
            Attempt::NamespaceTerminating { message }
        }
        403 if message.contains("poddisruptionbudget") => Attempt::Blocked {
            budgets: Vec::new(),
            cause: message.clone(),
            message,
            retry_after: None,
            multiple: false,
        },
        403 | 401 => Attempt::Forbidden { message },
        503 if retry_after.is_some() => Attempt::Throttled {
            retry_after,
            message,
        },
        400 | 405 | 415 | 422 => Attempt::Rejected { code, message },
        _ => Attempt::Transient {
            code: Some(code),
            message,
        },
    }
}

async fn send(client: &kube::Client, req: http::Request<Vec<u8>>, is_delete: bool) -> Attempt {
    match client.send(req.map(Body::from)).await {
        Ok(res) => {
            let code = res.status().as_u16();
            let retry_after = res
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            match res.into_body().collect_bytes().await {
                Ok(body) => classify(code, retry_after, &body, is_delete),
                Err(e) => Attempt::Transient {
                    code: Some(code),
                    message: format!("reading the answer: {e}"),
                },
            }
        }
        Err(e) => Attempt::Transient {
            code: None,
            message: e.to_string(),
        },
    }
}

fn pods_path(ns: &str) -> String {
    format!("/api/v1/namespaces/{ns}/pods")
}

/// Sends one eviction for `pod` and classifies the answer.
pub(crate) async fn evict(
    client: &kube::Client,
    pod: &PodRef,
    grace: Option<i64>,
    dry: DryRun,
    req: &Requests,
) -> Attempt {
    let body = serde_json::to_vec(&eviction_body(pod, grace, dry)).expect("serializable");
    let request = kube::core::Request::new(pods_path(&pod.namespace)).create_subresource(
        "eviction",
        &pod.name,
        &PostParams::default(),
        body,
    );
    submit(client, request, ("create", "pods/eviction"), dry, req).await
}

/// DELETEs `pod` (UID precondition, grace period) and classifies the answer; used with
/// `disable_eviction`.
pub(crate) async fn delete(
    client: &kube::Client,
    pod: &PodRef,
    grace: Option<i64>,
    dry: DryRun,
    req: &Requests,
) -> Attempt {
    let mut dp = DeleteParams {
        grace_period_seconds: grace.map(|g| g.max(0) as u32),
        preconditions: Some(Preconditions {
            uid: Some(pod.uid.clone()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    if dry == DryRun::Server {
        dp = dp.dry_run();
    }
    let request = kube::core::Request::new(pods_path(&pod.namespace)).delete(&pod.name, &dp);
    submit(client, request, ("delete", "pods"), dry, req).await
}

/// Counts and sends one built write (an eviction or a delete) and classifies the answer; a
/// request that cannot even be built is rejected, and a server dry run that passed says so.
async fn submit(
    client: &kube::Client,
    request: Result<http::Request<Vec<u8>>, kube::core::request::Error>,
    (verb, resource): (&str, &str),
    dry: DryRun,
    req: &Requests,
) -> Attempt {
    let request = match request {
        Ok(r) => r,
        Err(e) => {
            return Attempt::Rejected {
                code: 0,
                message: e.to_string(),
            };
        }
    };
    req.count(verb, resource);
    match send(client, request, verb == "delete").await {
        Attempt::Accepted if dry == DryRun::Server => Attempt::DryRunPassed,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn status_body(
        code: u16,
        message: &str,
        reason: &str,
        causes: &[(String, String)],
        ra: u32,
    ) -> Vec<u8> {
        let causes: Vec<serde_json::Value> = causes
            .iter()
            .map(|(r, m)| serde_json::json!({"reason": r, "message": m}))
            .collect();
        body(
            serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "code": code, "message": message, "reason": reason,
            "details": {"causes": causes, "retryAfterSeconds": ra}}),
        )
    }

    proptest! {
        #[test]
        fn classify_never_panics_on_any_bytes(
            code in any::<u16>(),
            ra in proptest::option::of(any::<u64>()),
            bytes in proptest::collection::vec(any::<u8>(), 0..600),
            is_delete in any::<bool>(),
        ) {
            let a = classify(code, ra, &bytes, is_delete);
            if let Attempt::Blocked { retry_after: Some(d), .. } | Attempt::Throttled { retry_after: Some(d), .. } = a {
                prop_assert!(d.as_secs() <= MAX_RETRY_AFTER_SECS);
            }
        }

        #[test]
        fn classify_status_bodies_by_the_rules(
            code in prop::sample::select(vec![200u16, 201, 400, 401, 403, 404, 409, 422, 429, 500, 503, 504]),
            message in ".{0,80}",
            reason in ".{0,20}",
            causes in proptest::collection::vec(
                (prop::sample::select(vec!["DisruptionBudget".to_string(), "NamespaceTerminating".to_string(), "x".to_string()]), ".{0,80}"),
                0..3,
            ),
            ra in any::<u32>(),
        ) {
            let b = status_body(code, &message, &reason, &causes, ra);
            let a = classify(code, None, &b, false);
            let budget_cause = causes.iter().any(|(r, _)| r == "DisruptionBudget");
            match code {
                200 | 201 => prop_assert_eq!(a, Attempt::Accepted),
                404 => prop_assert_eq!(a, Attempt::Gone),
                429 if budget_cause => {
                    let is_blocked = matches!(a, Attempt::Blocked { multiple: false, .. });
                    prop_assert!(is_blocked);
                }
                429 => {
                    let is_throttled = matches!(a, Attempt::Throttled { .. });
                    prop_assert!(is_throttled);
                }
                401 => {
                    let is_forbidden = matches!(a, Attempt::Forbidden { .. });
                    prop_assert!(is_forbidden);
                }
                _ => {
                    let not_accepted = !matches!(a, Attempt::Accepted | Attempt::Gone);
                    prop_assert!(not_accepted);
                }
            }
        }

        #[test]
        fn budget_names_never_panic(cause in ".{0,120}") {
            if let Some(name) = budget_name(&cause) {
                prop_assert!(cause.contains(&name));
            }
        }

        #[test]
        fn budget_names_are_read_back(
            name in "[a-z0-9]([a-z0-9.-]{0,40}[a-z0-9])?",
            needs in any::<u32>(),
            has in any::<u32>(),
        ) {
            let needs_cause = format!("The disruption budget {name} needs {needs} healthy pods and has {has} currently");
            prop_assert_eq!(budget_name(&needs_cause), Some(name.clone()));
            let processing = format!("The disruption budget {name} is still being processed by the server.");
            prop_assert_eq!(budget_name(&processing), Some(name));
        }
    }

    fn body(v: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn eviction_body_uses_camel_case_delete_options() {
        let p = PodRef {
            namespace: "shop".into(),
            name: "web-1".into(),
            uid: "u1".into(),
        };
        let b = eviction_body(&p, Some(10), DryRun::Server);
        assert_eq!(b["apiVersion"], "policy/v1");
        assert_eq!(b["kind"], "Eviction");
        assert_eq!(b["metadata"]["namespace"], "shop");
        assert_eq!(b["deleteOptions"]["preconditions"]["uid"], "u1");
        assert_eq!(b["deleteOptions"]["gracePeriodSeconds"], 10);
        assert_eq!(b["deleteOptions"]["dryRun"][0], "All");
        assert!(b.get("delete_options").is_none());
        let b = eviction_body(&p, None, DryRun::None);
        assert!(b["deleteOptions"].get("gracePeriodSeconds").is_none());
        assert!(b["deleteOptions"].get("dryRun").is_none());
    }

    #[test]
    fn budget_429_is_blocked_with_name_and_cause() {
        let b = body(
            serde_json::json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
            "message":"Cannot evict pod as it would violate the pod's disruption budget.","reason":"TooManyRequests","code":429,
            "details":{"causes":[{"reason":"DisruptionBudget","message":"The disruption budget web-pdb needs 2 healthy pods and has 2 currently"}]}}),
        );
        match classify(429, None, &b, false) {
            Attempt::Blocked {
                budgets,
                cause,
                retry_after,
                multiple,
                ..
            } => {
                assert_eq!(budgets, vec!["web-pdb"]);
                assert_eq!(
                    cause,
                    "The disruption budget web-pdb needs 2 healthy pods and has 2 currently"
                );
                assert_eq!(retry_after, None);
                assert!(!multiple);
            }
            other => panic!("{other:?}"),
        }
        let b = body(
            serde_json::json!({"kind":"Status","code":429,"message":"Cannot evict",
            "details":{"retryAfterSeconds":10,"causes":[{"reason":"DisruptionBudget","message":"The disruption budget web is still being processed by the server."}]}}),
        );
        match classify(429, Some(10), &b, false) {
            Attempt::Blocked {
                budgets,
                retry_after,
                ..
            } => {
                assert_eq!(budgets, vec!["web"]);
                assert_eq!(retry_after, Some(Duration::from_secs(10)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_answers() {
        assert_eq!(classify(201, None, b"{}", false), Attempt::Accepted);
        assert_eq!(classify(404, None, b"{}", false), Attempt::Gone);
        let conflict = body(
            serde_json::json!({"kind":"Status","code":409,"message":"Operation cannot be fulfilled on Pod \"x\": the UID in the precondition (a) does not match the UID in record (b). The object might have been deleted and then recreated"}),
        );
        assert_eq!(classify(409, None, &conflict, false), Attempt::Replaced);
        let multi = body(
            serde_json::json!({"kind":"Status","code":500,"message":"This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."}),
        );
        assert!(matches!(
            classify(500, None, &multi, false),
            Attempt::Blocked { multiple: true, .. }
        ));
        let ns = body(
            serde_json::json!({"kind":"Status","code":403,"reason":"Forbidden","message":"pods \"x\" is forbidden: unable to create new content in namespace shop because it is being terminated",
            "details":{"causes":[{"reason":"NamespaceTerminating","message":"namespace shop is being terminated","field":"metadata.namespace"}]}}),
        );
        assert!(matches!(
            classify(403, None, &ns, false),
            Attempt::NamespaceTerminating { .. }
        ));
        let rbac = body(
            serde_json::json!({"kind":"Status","code":403,"message":"pods \"x\" is forbidden: User cannot create"}),
        );
        assert!(matches!(
            classify(403, None, &rbac, false),
            Attempt::Forbidden { .. }
        ));
        assert_eq!(
            classify(429, Some(2), b"too many requests", false),
            Attempt::Throttled {
                retry_after: Some(Duration::from_secs(2)),
                message: "too many requests".into()
            }
        );
        assert!(matches!(
            classify(503, None, b"", false),
            Attempt::Transient {
                code: Some(503),
                ..
            }
        ));
        assert!(matches!(
            classify(500, None, b"boom", false),
            Attempt::Transient {
                code: Some(500),
                ..
            }
        ));
    }
}
