//! Optional authentication (bearer tokens) and RBAC-style authorization, answering 401 and 403
//! with the real server's Status texts. Without an `auth` section in the scenario everything is
//! allowed; the token `kubesim` (the simulator's own kubeconfig) is always a cluster admin.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, group_resource};

/// The token of the simulator's own kubeconfig and client: always allowed everything.
pub const ADMIN_TOKEN: &str = "kubesim";

/// The scenario's `auth` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthSpec {
    /// Users and their bearer tokens.
    #[serde(default)]
    pub users: Vec<UserSpec>,
    /// Named sets of rules.
    #[serde(default)]
    pub roles: Vec<RoleSpec>,
    /// Grants of roles to users, cluster-wide or in one namespace.
    #[serde(default)]
    pub bindings: Vec<BindingSpec>,
}

/// A user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserSpec {
    /// User name (appears in 403 messages).
    pub name: String,
    /// Bearer token.
    pub token: String,
}

/// A role: a list of rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleSpec {
    /// Role name.
    pub name: String,
    /// Rules; a request is allowed when any rule matches.
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

/// One rule: verbs × resources (× API groups).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleSpec {
    /// Verbs (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`, or `*`).
    pub verbs: Vec<String>,
    /// Resources: `pods`, `pods/eviction` (subresources are never implied), `pods/*`, or `*`.
    pub resources: Vec<String>,
    /// API groups ("" for core, `*` for all); absent = all groups.
    #[serde(default)]
    pub api_groups: Option<Vec<String>>,
}

/// A grant of a role to a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BindingSpec {
    /// User name.
    pub user: String,
    /// Role name.
    pub role: String,
    /// Restrict the grant to one namespace (like a RoleBinding); absent = cluster-wide.
    #[serde(default)]
    pub namespace: Option<String>,
}

/// One request as the authorizer sees it.
pub struct Attributes<'a> {
    /// Kubernetes verb.
    pub verb: &'a str,
    /// API group.
    pub group: &'a str,
    /// Plural resource.
    pub resource: &'a str,
    /// Subresource or "".
    pub sub: &'a str,
    /// Namespace of the request, if namespaced.
    pub namespace: Option<&'a str>,
    /// Object name, if any.
    pub name: Option<&'a str>,
}

struct Grant {
    rule: RuleSpec,
    namespace: Option<String>,
}

/// The compiled authenticator and authorizer.
pub struct Authz {
    users: HashMap<String, String>,
    grants: HashMap<String, Vec<Grant>>,
}

fn rule_matches(rule: &RuleSpec, a: &Attributes) -> bool {
    let verb_ok = rule.verbs.iter().any(|v| v == "*" || v == a.verb);
    let full = if a.sub.is_empty() {
        a.resource.to_string()
    } else {
        format!("{}/{}", a.resource, a.sub)
    };
    let res_ok = rule.resources.iter().any(|r| {
        r == "*"
            || *r == full
            || (r.strip_suffix("/*").is_some_and(|base| base == a.resource) && !a.sub.is_empty())
    });
    let group_ok = rule
        .api_groups
        .as_ref()
        .is_none_or(|gs| gs.iter().any(|g| g == "*" || g == a.group));
    verb_ok && res_ok && group_ok
}

impl Authz {
    /// Compile the scenario's auth section.
    pub fn new(spec: &AuthSpec) -> Authz {
        let users = spec
            .users
            .iter()
            .map(|u| (u.token.clone(), u.name.clone()))
            .collect();
        let mut grants: HashMap<String, Vec<Grant>> = HashMap::new();
        for b in &spec.bindings {
            for role in spec.roles.iter().filter(|r| r.name == b.role) {
                for rule in &role.rules {
                    grants.entry(b.user.clone()).or_default().push(Grant {
                        rule: rule.clone(),
                        namespace: b.namespace.clone(),
                    });
                }
            }
        }
        Authz { users, grants }
    }

    /// Authenticate a bearer token: the user name, or a 401.
    pub fn authenticate(&self, token: Option<&str>) -> Result<Option<String>, ApiError> {
        match token {
            Some(ADMIN_TOKEN) => Ok(None),
            Some(t) => match self.users.get(t) {
                Some(u) => Ok(Some(u.clone())),
                None => Err(unauthorized()),
            },
            None => Err(unauthorized()),
        }
    }

    /// Authorize a resource request for an authenticated user (None = admin).
    pub fn authorize(&self, user: Option<&str>, a: &Attributes) -> Result<(), ApiError> {
        let Some(user) = user else { return Ok(()) };
        let allowed = self.grants.get(user).is_some_and(|gs| {
            gs.iter().any(|g| {
                let scope_ok = match (&g.namespace, a.namespace) {
                    (None, _) => true,
                    (Some(bound), Some(ns)) => bound == ns,
                    (Some(_), None) => false,
                };
                scope_ok && rule_matches(&g.rule, a)
            })
        });
        if allowed {
            Ok(())
        } else {
            Err(forbidden(user, a))
        }
    }
}

fn unauthorized() -> ApiError {
    ApiError::new(401, "Unauthorized", "Unauthorized")
}

/// The real server's 403 for an RBAC denial.
fn forbidden(user: &str, a: &Attributes) -> ApiError {
    let full = if a.sub.is_empty() {
        a.resource.to_string()
    } else {
        format!("{}/{}", a.resource, a.sub)
    };
    let why = match a.namespace {
        Some(ns) => format!(
            "User {user:?} cannot {} resource {full:?} in API group {:?} in the namespace {ns:?}",
            a.verb, a.group
        ),
        None => format!(
            "User {user:?} cannot {} resource {full:?} in API group {:?} at the cluster scope",
            a.verb, a.group
        ),
    };
    let name = a.name.unwrap_or("");
    let mut e = ApiError::forbidden(a.group, a.resource, name, &why);
    if name.is_empty() {
        e.message = format!(
            "{} is forbidden: {why}",
            group_resource(a.group, a.resource)
        );
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authz() -> Authz {
        let spec: AuthSpec = serde_yaml::from_str(
            r#"
users: [{name: drainer, token: t1}, {name: nobody, token: t2}]
roles:
  - name: drain
    rules:
      - {verbs: [get, list], resources: [pods, nodes]}
      - {verbs: [create], resources: [pods/eviction]}
bindings: [{user: drainer, role: drain, namespace: shop}]
"#,
        )
        .unwrap();
        Authz::new(&spec)
    }

    fn attrs<'a>(
        verb: &'a str,
        resource: &'a str,
        sub: &'a str,
        ns: Option<&'a str>,
        name: Option<&'a str>,
    ) -> Attributes<'a> {
        Attributes {
            verb,
            group: "",
            resource,
            sub,
            namespace: ns,
            name,
        }
    }

    #[test]
    fn tokens_and_namespaced_grants() {
        let a = authz();
        assert_eq!(
            a.authenticate(Some("t1")).unwrap().as_deref(),
            Some("drainer")
        );
        assert_eq!(a.authenticate(Some("kubesim")).unwrap(), None);
        assert_eq!(a.authenticate(Some("bad")).unwrap_err().code, 401);
        assert_eq!(a.authenticate(None).unwrap_err().message, "Unauthorized");
        assert!(
            a.authorize(
                Some("drainer"),
                &attrs("create", "pods", "eviction", Some("shop"), Some("p"))
            )
            .is_ok()
        );
        let e = a
            .authorize(
                Some("drainer"),
                &attrs("create", "pods", "eviction", Some("other"), Some("p")),
            )
            .unwrap_err();
        assert_eq!(
            e.message,
            "pods \"p\" is forbidden: User \"drainer\" cannot create resource \"pods/eviction\" in API group \"\" in the namespace \"other\""
        );
        let e = a
            .authorize(Some("drainer"), &attrs("list", "nodes", "", None, None))
            .unwrap_err();
        assert_eq!(
            e.message,
            "nodes is forbidden: User \"drainer\" cannot list resource \"nodes\" in API group \"\" at the cluster scope"
        );
        assert!(
            a.authorize(
                Some("drainer"),
                &attrs("delete", "pods", "", Some("shop"), Some("p"))
            )
            .is_err()
        );
        assert!(
            a.authorize(
                Some("nobody"),
                &attrs("get", "pods", "", Some("shop"), Some("p"))
            )
            .is_err()
        );
        assert!(
            a.authorize(None, &attrs("delete", "nodes", "", None, Some("n")))
                .is_ok()
        );
    }
}
