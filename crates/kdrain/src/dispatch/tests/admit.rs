//! `wait_for_capacity`: each pod whose owner replaces it is evicted only once a fresh read says
//! its replacement has room; the others wait for room (no request sent) and are asked for again
//! after a pause or when a node comes back; a pod its budget holds back is not asked for.

use super::*;

/// A `AdmitRoom`: the pods asked for (index and name), the recent and coming pods' names.
struct Asked {
    asked: Vec<(usize, String)>,
    recent: Vec<String>,
    coming: Vec<String>,
    closed: Vec<String>,
}

fn name(p: &Pod) -> String {
    p.metadata.name.clone().unwrap_or_default()
}

fn admit_room(cmds: &[Command]) -> Option<Asked> {
    let mut found = cmds.iter().filter_map(|c| match c {
        Command::AdmitRoom {
            asked,
            closed,
            recent,
            coming,
        } => Some(Asked {
            asked: asked.iter().map(|(ix, p)| (*ix, name(p))).collect(),
            recent: recent.iter().map(name).collect(),
            coming: coming.iter().map(name).collect(),
            closed: closed.iter().cloned().collect(),
        }),
        _ => None,
    });
    let first = found.next();
    assert!(found.next().is_none(), "one read at a time: {cmds:?}");
    first
}

fn names(a: &Asked) -> Vec<&str> {
    a.asked.iter().map(|(_, n)| n.as_str()).collect()
}

/// The answer admitting the pods named `fit` among those asked, read at once.
fn admitted(d: &mut Drain, a: &Asked, fit: &[&str]) -> Vec<Command> {
    admitted_after(d, a, fit, Duration::ZERO)
}

/// The answer admitting the pods named `fit` among those asked, from a read that took `took`.
fn admitted_after(d: &mut Drain, a: &Asked, fit: &[&str], took: Duration) -> Vec<Command> {
    let asked: Vec<usize> = a.asked.iter().map(|(ix, _)| *ix).collect();
    let fits = a
        .asked
        .iter()
        .filter(|(_, n)| fit.contains(&n.as_str()))
        .map(|(ix, _)| *ix)
        .collect();
    d.on(Input::Admitted {
        asked,
        fits: Ok(fits),
        took,
    })
}

fn capacity_opts() -> DrainOptions {
    DrainOptions {
        wait_for_capacity: true,
        ..opts()
    }
}

#[test]
fn a_pod_is_evicted_only_once_a_fresh_read_finds_room_for_its_replacement() {
    let big = pod("big", "n1", "big");
    let small = pod("small", "n1", "small");
    let mut d = Drain::new(capacity_opts(), vec![big, small], vec![]);
    let out = d.start();
    assert!(sent(&out).is_empty(), "nothing sent before the read");
    let a = admit_room(&out).expect("the room is read first");
    assert_eq!(names(&a), ["big", "small"]);
    assert_eq!((a.recent.len(), a.coming.len()), (0, 0));
    assert_eq!(a.closed, ["n1"]);
    // while the read is in flight, nothing else is asked or sent
    let out = d.tick_at(secs(0.1));
    assert!(admit_room(&out).is_none() && sent(&out).is_empty());
    // room for the big pod's replacement only: it goes, the small one waits for room
    let out = admitted(&mut d, &a, &["big"]);
    assert_eq!(sent(&out), ["big"]);
    assert_eq!(blocked(&out), [("small".to_string(), WaitsFor::Room, None)]);
    assert!(admit_room(&out).is_none());
    assert_eq!(d.wake_at(), Some(secs(1.1)), "asked again after a second");
    // asked again then, the big one's eviction (unanswered) counted as a replacement to come
    let out = d.tick_at(secs(1.1));
    let a = admit_room(&out).expect("asked again");
    assert_eq!(names(&a), ["small"]);
    assert_eq!(a.recent, ["big"]);
    let out = admitted(&mut d, &a, &["small"]);
    assert_eq!(sent(&out), ["small"]);
}

#[test]
fn a_pod_its_budget_holds_back_is_not_asked_for_and_room_is_kept_for_it() {
    let big = pod("big", "n1", "big");
    let small = pod("small", "n1", "small");
    let mut d = Drain::new(
        capacity_opts(),
        vec![big, small],
        vec![pdb("big", "big", 0, 1, 1, &[])],
    );
    let out = d.start();
    assert_eq!(
        blocked(&out),
        [("big".to_string(), WaitsFor::Budget, Some("big".to_string()))]
    );
    // the small pod is asked for, room kept for the big one still to come
    let a = admit_room(&out).expect("the small pod's room is read");
    assert_eq!(names(&a), ["small"]);
    assert_eq!(a.coming, ["big"]);
    let out = admitted(&mut d, &a, &[]);
    assert!(sent(&out).is_empty());
    // the budget allows the big pod: its room is read, then it goes
    let out = d.budget(pdb("big", "big", 1, 1, 2, &[]));
    assert!(sent(&out).is_empty());
    let a = admit_room(&out).expect("read for the big pod");
    assert_eq!(names(&a), ["big"]);
    let out = admitted(&mut d, &a, &["big"]);
    assert_eq!(sent(&out), ["big"]);
}

#[test]
fn a_node_coming_back_asks_again_for_the_pods_waiting_for_room() {
    let mut d = Drain::new(capacity_opts(), vec![pod("a", "n1", "a")], vec![]);
    let a = admit_room(&d.start()).expect("read");
    let out = admitted(&mut d, &a, &[]);
    assert_eq!(blocked(&out), [("a".to_string(), WaitsFor::Room, None)]);
    // a node becomes schedulable and Ready at 0.2 s, before the pause is over: asked at once
    d.at = secs(0.2);
    let back: k8s_openapi::api::core::v1::Node = serde_json::from_value(json!({
        "metadata": {"name": "n9"},
        "spec": {},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }))
    .expect("node");
    let out = d.on(Input::Nodes(Box::new(Seen {
        source: usize::MAX - 1,
        change: Change::Upsert(back),
    })));
    let a = admit_room(&out).expect("asked again when a node comes back");
    assert_eq!(names(&a), ["a"]);
    // a read that fails is a wait for room too, said with its reason
    let out = d.on(Input::Admitted {
        asked: vec![a.asked[0].0],
        fits: Err("connection refused".into()),
        took: Duration::ZERO,
    });
    let why = events(&out)
        .into_iter()
        .find_map(|e| match e {
            Event::Blocked { cause, .. } => Some(cause),
            _ => None,
        })
        .expect("blocked");
    assert!(
        why.starts_with("cannot read the cluster's room: connection refused"),
        "{why}"
    );
    assert!(sent(&out).is_empty());
}

#[test]
fn without_wait_for_capacity_or_in_a_dry_run_nothing_is_asked() {
    let mut d = Drain::new(opts(), vec![pod("a", "n1", "a")], vec![]);
    let out = d.start();
    assert_eq!(sent(&out), ["a"]);
    assert!(admit_room(&out).is_none());
    let dry = DrainOptions {
        dry_run: crate::options::DryRun::Client,
        ..capacity_opts()
    };
    let mut d = Drain::new(dry, vec![pod("a", "n1", "a")], vec![]);
    let out = d.start();
    assert_eq!(sent(&out), ["a"]);
    assert!(admit_room(&out).is_none());
}

#[test]
fn reads_of_the_cluster_are_spaced_by_nine_times_what_the_last_one_took() {
    // a large cluster: reading every pod took 2 s, so the next read waits 18 s, not 1 s
    let a_pod = pod("a", "n1", "a");
    let b_pod = pod("b", "n1", "b");
    let mut d = Drain::new(capacity_opts(), vec![a_pod, b_pod], vec![]);
    let out = d.start();
    let a = admit_room(&out).expect("the room is read first");
    let out = admitted_after(&mut d, &a, &["a"], Duration::from_secs(2));
    assert_eq!(sent(&out), ["a"]);
    assert_eq!(blocked(&out), [("b".to_string(), WaitsFor::Room, None)]);
    d.answer("a", Attempt::Accepted);
    assert_eq!(d.wake_at(), Some(secs(18.0)), "the next read 9 x 2 s later");
    for t in [1.0, 10.0] {
        let out = d.tick_at(secs(t));
        assert!(
            admit_room(&out).is_none(),
            "no read before its time ({t} s)"
        );
    }
    let out = d.tick_at(secs(18.0));
    let a = admit_room(&out).expect("read again then");
    assert_eq!(names(&a), ["b"]);
    // a fast read spaces nothing: the next is asked as soon as a pod is due
    let out = admitted_after(&mut d, &a, &["b"], Duration::from_millis(5));
    assert_eq!(sent(&out), ["b"]);
}
