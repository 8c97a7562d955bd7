//! coordination.k8s.io/v1 Leases as leader election uses them: optimistic concurrency of
//! updates (409 on a stale resourceVersion), server-side apply field ownership (the second
//! applier of another holder gets the real 409 conflict), and kube-lease-manager's failover.

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use kube_lease_manager::LeaseManagerBuilder;
use serde_json::json;

use crate::common::{WAIT, sim};

fn lease(name: &str) -> Lease {
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}))
        .unwrap()
}

#[tokio::test]
async fn lease_updates_are_optimistic() {
    let s = sim("nodes: [{name: n1}]").await;
    let leases: Api<Lease> = Api::namespaced(s.client(), "default");
    let pp = PostParams::default();
    let created = leases.create(&pp, &lease("l")).await.unwrap();
    let e = leases.create(&pp, &lease("l")).await.unwrap_err();
    assert!(
        matches!(&e, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists"),
        "{e}"
    );
    let mut mine = leases.get("l").await.unwrap();
    mine.spec.as_mut().unwrap().holder_identity = Some("b".into());
    let taken = leases.replace("l", &pp, &mine).await.unwrap();
    assert_ne!(
        taken.metadata.resource_version,
        created.metadata.resource_version
    );
    // A replace based on the first read loses: 409 Conflict with the real message.
    let mut stale = created.clone();
    stale.spec.as_mut().unwrap().holder_identity = Some("c".into());
    match leases.replace("l", &pp, &stale).await.unwrap_err() {
        kube::Error::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
            assert_eq!(
                s.message,
                "Operation cannot be fulfilled on leases.coordination.k8s.io \"l\": the object has been modified; please apply your changes to the latest version and try again"
            );
        }
        other => panic!("{other}"),
    }
    // A Lease may be replaced without a resourceVersion (unconditional update), as on the real server.
    let mut blind = taken.clone();
    blind.metadata.resource_version = None;
    blind.spec.as_mut().unwrap().holder_identity = Some("d".into());
    let r = leases.replace("l", &pp, &blind).await.unwrap();
    assert_eq!(r.spec.unwrap().holder_identity.as_deref(), Some("d"));
}

#[tokio::test]
async fn a_second_applier_of_the_holder_gets_the_field_manager_conflict() {
    let s = sim("nodes: [{name: n1}]").await;
    let leases: Api<Lease> = Api::namespaced(s.client(), "default");
    let apply = |holder: &str| {
        Patch::Apply(
            json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15}}),
        )
    };
    leases
        .patch("l", &PatchParams::apply("mgr-a"), &apply("a"))
        .await
        .unwrap();
    match leases
        .patch("l", &PatchParams::apply("mgr-b"), &apply("b"))
        .await
        .unwrap_err()
    {
        kube::Error::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
            assert_eq!(
                s.message,
                "Apply failed with 1 conflict: conflict with \"mgr-a\": .spec.holderIdentity"
            );
        }
        other => panic!("{other}"),
    }
    // The same value is shared without conflict; force takes the field over.
    leases
        .patch("l", &PatchParams::apply("mgr-b"), &apply("a"))
        .await
        .unwrap();
    let forced = leases
        .patch("l", &PatchParams::apply("mgr-b").force(), &apply("b"))
        .await
        .unwrap();
    assert_eq!(forced.spec.unwrap().holder_identity.as_deref(), Some("b"));
    // An update that clears the field frees it for the next applier.
    let clear = Patch::Merge(json!({"spec": {"holderIdentity": null}}));
    leases
        .patch("l", &PatchParams::default(), &clear)
        .await
        .unwrap();
    leases
        .patch("l", &PatchParams::apply("mgr-a"), &apply("a"))
        .await
        .unwrap();
    let managers: Vec<String> = leases
        .get("l")
        .await
        .unwrap()
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .map(|m| format!("{}/{}", m.manager.unwrap(), m.operation.unwrap()))
        .collect();
    assert!(
        managers.contains(&"mgr-a/Apply".to_string()),
        "{managers:?}"
    );
}

#[tokio::test]
async fn kube_lease_manager_elects_one_leader_and_the_standby_takes_over() {
    let s = sim("nodes: [{name: n1}]").await;
    let build = |identity: &str| {
        LeaseManagerBuilder::new(s.client(), "kdrain-leader")
            .with_namespace("default")
            .with_identity(identity)
            .with_duration(2)
            .with_grace(1)
            .build()
    };
    let first = build("replica-1").await.unwrap();
    let second = build("replica-2").await.unwrap();
    assert!(
        tokio::time::timeout(WAIT, first.changed())
            .await
            .unwrap()
            .unwrap(),
        "the first leads"
    );
    let leases: Api<Lease> = Api::namespaced(s.client(), "default");
    let holder = || async {
        leases
            .get("kdrain-leader")
            .await
            .unwrap()
            .spec
            .unwrap()
            .holder_identity
    };
    assert_eq!(holder().await.as_deref(), Some("replica-1"));
    // The leader stops renewing (killed); the standby takes over once the lease expires.
    drop(first);
    assert!(
        tokio::time::timeout(WAIT, second.changed())
            .await
            .unwrap()
            .unwrap(),
        "the standby leads"
    );
    assert_eq!(holder().await.as_deref(), Some("replica-2"));
}
