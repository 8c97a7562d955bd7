//! `wait_for_capacity`: nodes that wait for room start as later waves when a fresh read says
//! they fit, the wait re-reads with a bounded backoff, and ends at the timeout with the nodes
//! still waiting reported as having no room, nothing evicted from them.

use super::*;
use crate::dispatch::core::NodesSeen;
use crate::dispatch::room::room_signature;
use crate::report::{FailureKind, NodeOutcome};

/// n1, n2 and n3 with one pod each; the plan put n1 in a wave and n2, n3 wait for room.
fn waiting(opts: DrainOptions) -> Drain {
    let a = pod("a", "n1", "a");
    let b = pod("b", "n2", "b");
    let c = pod("c", "n3", "c");
    let (pa, pb, pc) = (evict(&a), evict(&b), evict(&c));
    let mut d = Drain::planned(
        DrainOptions {
            parallel_nodes: 10,
            wait_for_capacity: true,
            ..opts
        },
        vec![
            ("n1", vec![a], vec![pa]),
            ("n2", vec![b], vec![pb]),
            ("n3", vec![c], vec![pc]),
        ],
        vec![],
    );
    d.core.waves = vec![vec![0]];
    d.core.waiting = vec![1, 2];
    d.admit_all = true;
    d
}

/// A `ReadRoom`: each candidate's index and pod names, the closed targets, and the limit.
type Read = (Vec<(usize, Vec<String>)>, Vec<String>, usize);

/// The `ReadRoom` asked for.
fn read_room(cmds: &[Command]) -> Option<Read> {
    cmds.iter().find_map(|c| match c {
        Command::ReadRoom {
            candidates,
            closed,
            limit,
            ..
        } => Some((
            candidates
                .iter()
                .map(|(i, _, pods)| {
                    (
                        *i,
                        pods.iter()
                            .map(|p| p.metadata.name.clone().unwrap_or_default())
                            .collect(),
                    )
                })
                .collect(),
            closed.iter().cloned().collect(),
            *limit,
        )),
        _ => None,
    })
}

fn room(d: &mut Drain, fits: Vec<usize>) -> Vec<Command> {
    d.on(Input::Room {
        fits: Ok(fits),
        nodes: None,
    })
}

/// Drains node `i` whose one pod is `name`: its eviction is accepted and the final LIST is
/// empty.
fn drain_node(d: &mut Drain, i: usize, name: &str) -> Vec<Command> {
    d.answer(name, Attempt::Gone);
    d.listed(i, ListPurpose::Final, vec![])
}

#[test]
fn waiting_nodes_start_as_the_next_wave_when_a_fresh_read_finds_room() {
    let mut d = waiting(opts());
    let out = d.start();
    assert_eq!(sent(&out), ["a"], "only the wave that fits starts");
    assert_eq!(
        events(&out)[0],
        Event::WaveStarted {
            wave: 1,
            of: 1,
            nodes: vec!["n1".into()],
            waiting_for_room: vec!["n2".into(), "n3".into()],
        }
    );
    assert_eq!(read_room(&out), None, "no read while the wave runs");
    // n1 drained: the cluster is read again for the waiting nodes; n1 (drained) may take
    // replacements again if someone made it schedulable, n2 and n3 stay closed
    let out = drain_node(&mut d, 0, "a");
    assert_eq!(
        read_room(&out),
        Some((
            vec![(1, vec!["b".to_string()]), (2, vec!["c".to_string()])],
            vec!["n2".to_string(), "n3".to_string()],
            10
        ))
    );
    assert!(sent(&out).is_empty());
    // room for n2's replacements only: n2 is wave 2, n3 still waits
    let out = room(&mut d, vec![1]);
    assert_eq!(
        events(&out)[0],
        Event::WaveStarted {
            wave: 2,
            of: 2,
            nodes: vec!["n2".into()],
            waiting_for_room: vec!["n3".into()],
        }
    );
    assert_eq!(sent(&out), ["b"]);
    let out = drain_node(&mut d, 1, "b");
    let (candidates, closed, _) = read_room(&out).expect("read again after wave 2");
    assert_eq!(candidates, [(2, vec!["c".to_string()])]);
    assert_eq!(closed, ["n3"]);
    let out = room(&mut d, vec![2]);
    assert_eq!(
        events(&out)[0],
        Event::WaveStarted {
            wave: 3,
            of: 3,
            nodes: vec!["n3".into()],
            waiting_for_room: vec![],
        }
    );
    assert_eq!(sent(&out), ["c"]);
    let out = drain_node(&mut d, 2, "c");
    assert_eq!(read_room(&out), None, "nothing waits any more");
    assert!(d.core.finished());
    assert!(
        d.reports()
            .iter()
            .all(|r| r.outcome == NodeOutcome::Drained)
    );
}

#[test]
fn with_no_room_the_drain_says_so_once_and_reads_again_with_a_bounded_backoff() {
    let mut d = waiting(opts());
    d.start();
    drain_node(&mut d, 0, "a");
    let out = room(&mut d, vec![]);
    assert_eq!(
        events(&out),
        [Event::WaitingForRoom {
            nodes: vec!["n2".into(), "n3".into()],
            reason: "their replacements fit on no schedulable node now".into(),
        }]
    );
    assert!(sent(&out).is_empty());
    // 1 s, then 2, 4, and at most 5 s between reads; a tick before the time reads nothing
    let mut at = 0.0;
    for pause in [1.0, 2.0, 4.0, 5.0, 5.0] {
        assert_eq!(d.wake_at(), Some(secs(at + pause)));
        assert_eq!(read_room(&d.tick_at(secs(at + pause / 2.0))), None);
        at += pause;
        let out = d.tick_at(secs(at));
        assert!(read_room(&out).is_some(), "read at {at}s");
        assert_eq!(
            d.wake_at(),
            None,
            "nothing more while the read is in flight"
        );
        let out = room(&mut d, vec![]);
        assert!(events(&out).is_empty(), "the wait is announced once");
    }
    // a failed read is one more read without room
    let out = d.tick_at(secs(at + 5.0));
    assert!(read_room(&out).is_some());
    let out = d.on(Input::Room {
        fits: Err("connection refused".into()),
        nodes: None,
    });
    assert!(events(&out).is_empty());
    assert_eq!(d.wake_at(), Some(secs(at + 10.0)));
    // room at last: both fit, in one wave
    d.tick_at(secs(at + 10.0));
    let out = room(&mut d, vec![1, 2]);
    assert_eq!(sent(&out), ["b", "c"]);
    // a later wait starts its backoff afresh
    assert!(matches!(
        events(&out)[0],
        Event::WaveStarted { wave: 2, of: 2, .. }
    ));
}

#[test]
fn a_wave_from_the_room_has_at_most_parallel_nodes() {
    let mut d = waiting(opts());
    d.core.opts.parallel_nodes = 1;
    d.start();
    let out = drain_node(&mut d, 0, "a");
    assert_eq!(read_room(&out).map(|r| r.2), Some(1));
    let out = room(&mut d, vec![2, 1]);
    assert_eq!(sent(&out), ["c"]);
}

#[test]
fn at_the_timeout_the_nodes_still_waiting_end_with_no_room_and_nothing_evicted() {
    let mut d = waiting(DrainOptions {
        timeout: Some(secs(3.0)),
        ..opts()
    });
    d.start();
    drain_node(&mut d, 0, "a");
    // the wait begins at the first read without room (t = 0) and lasts the timeout
    room(&mut d, vec![]);
    d.tick_at(secs(1.0));
    room(&mut d, vec![]);
    assert_eq!(
        d.wake_at(),
        Some(secs(3.0)),
        "the last read is at the deadline"
    );
    let out = d.tick_at(secs(3.0));
    assert!(read_room(&out).is_some());
    let out = room(&mut d, vec![]);
    assert!(sent(&out).is_empty());
    let failed: Vec<(String, String, usize)> = events(&out)
        .into_iter()
        .filter_map(|e| match e {
            Event::NodeFailed {
                node,
                error,
                pending,
            } => Some((node, error, pending.len())),
            _ => None,
        })
        .collect();
    let error = "no room for the replacements of its pods: waited 3s for schedulable nodes with room (--wait-for-capacity); nothing was evicted";
    assert_eq!(
        failed,
        [
            ("n2".to_string(), error.to_string(), 1),
            ("n3".to_string(), error.to_string(), 1)
        ]
    );
    assert!(d.core.finished());
    assert_eq!(d.wake_at(), None);
    let reports = d.reports();
    assert_eq!(reports[0].outcome, NodeOutcome::Drained);
    for r in &reports[1..] {
        assert_eq!(r.outcome, NodeOutcome::PodsLeft);
        assert_eq!(r.pods[0].attempts, 0, "never evicted");
    }
    assert!(matches!(
        d.outcome("b"),
        PodOutcome::Failed {
            kind: FailureKind::NoRoom,
            ..
        }
    ));
    // a room answer after the end changes nothing
    assert!(room(&mut d, vec![1]).is_empty());
}

#[test]
fn when_nothing_fits_at_the_start_the_drain_reads_the_room_first() {
    let mut d = waiting(opts());
    d.core.waves = vec![];
    d.core.waiting = vec![0, 1, 2];
    let out = d.start();
    assert!(sent(&out).is_empty());
    let (candidates, closed, _) = read_room(&out).expect("read at the start");
    assert_eq!(candidates.len(), 3);
    assert_eq!(closed, ["n1", "n2", "n3"]);
    let out = room(&mut d, vec![0]);
    assert_eq!(
        events(&out)[0],
        Event::WaveStarted {
            wave: 1,
            of: 1,
            nodes: vec!["n1".into()],
            waiting_for_room: vec!["n2".into(), "n3".into()],
        }
    );
}

#[test]
fn a_stop_while_nodes_wait_for_room_ends_them_as_interrupted() {
    let mut d = waiting(opts());
    d.start();
    drain_node(&mut d, 0, "a");
    room(&mut d, vec![]);
    let out = d.on(Input::Stop);
    assert!(read_room(&out).is_none());
    assert!(d.core.finished());
    assert_eq!(d.wake_at(), None);
    assert!(matches!(
        d.outcome("c"),
        PodOutcome::Failed {
            kind: FailureKind::Interrupted,
            ..
        }
    ));
}

#[test]
fn later_planned_waves_are_chosen_again_by_the_room_while_nodes_wait() {
    let mut d = waiting(opts());
    // the plan: n1, then n2; n3 waits
    d.core.waves = vec![vec![0], vec![1]];
    d.core.waiting = vec![2];
    d.start();
    let out = drain_node(&mut d, 0, "a");
    let (candidates, _, _) = read_room(&out).expect("read when wave 1 ends");
    let order: Vec<usize> = candidates.iter().map(|c| c.0).collect();
    assert_eq!(
        order,
        [1, 2],
        "the planned wave first, then the waiting node"
    );
    let out = room(&mut d, vec![1, 2]);
    assert_eq!(sent(&out), ["b", "c"]);
}

/// A node named `name`, cordoned or not, Ready.
fn node(name: &str, cordoned: bool) -> k8s_openapi::api::core::v1::Node {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"unschedulable": cordoned},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }))
    .expect("node")
}

fn node_seen(n: k8s_openapi::api::core::v1::Node) -> Input {
    Input::Nodes(Box::new(Seen {
        source: usize::MAX - 1,
        change: Change::Upsert(n),
    }))
}

fn watch_nodes(cmds: &[Command]) -> Option<String> {
    cmds.iter().find_map(|c| match c {
        Command::WatchNodes { resource_version } => Some(resource_version.clone()),
        _ => None,
    })
}

#[test]
fn a_waiting_node_starts_as_soon_as_a_node_comes_back_beside_the_nodes_still_draining() {
    let mut d = waiting(opts());
    // the plan: n1 and n2 together; n3 waits
    d.core.waves = vec![vec![0, 1]];
    d.core.waiting = vec![2];
    let out = d.start();
    assert_eq!(sent(&out), ["a", "b"]);
    // n1 drained while n2's eviction is still unanswered: the room is read at once, keeping
    // room for n2's replacement still to come; 9 more nodes may start
    let out = drain_node(&mut d, 0, "a");
    let asked = out
        .iter()
        .find_map(|c| match c {
            Command::ReadRoom {
                reserved, limit, ..
            } => Some((
                reserved
                    .iter()
                    .map(|p| p.metadata.name.clone().unwrap_or_default())
                    .collect::<Vec<_>>(),
                *limit,
            )),
            _ => None,
        })
        .expect("read when n1 ends");
    assert_eq!(asked, (vec!["b".to_string()], 9));
    // no room yet; the read saw the nodes: the node watch starts from its resourceVersion
    let out = d.on(Input::Room {
        fits: Ok(vec![]),
        nodes: Some(NodesSeen {
            usable: [(
                "spare".to_string(),
                room_signature(&node("spare", false)).unwrap(),
            )]
            .into(),
            resource_version: "41".into(),
        }),
    });
    assert_eq!(watch_nodes(&out).as_deref(), Some("41"));
    assert!(matches!(events(&out)[0], Event::WaitingForRoom { .. }));
    // a change to a node that was usable already says nothing new about room
    let out = d.on(node_seen(node("spare", false)));
    assert_eq!(read_room(&out), None);
    // n1 uncordoned (the operator brought it back) at t = 0.3 s, long before the next fallback
    // read (1 s): read now
    let out = d.tick_at(secs(0.3));
    assert_eq!(read_room(&out), None);
    let out = d.on(node_seen(node("n1", false)));
    let (candidates, closed, _) = read_room(&out).expect("read when n1 is back");
    assert_eq!(candidates, [(2, vec!["c".to_string()])]);
    assert_eq!(closed, ["n2", "n3"]);
    // a second node back while that read is in flight: asked again once it is answered
    assert_eq!(read_room(&d.on(node_seen(node("n9", false)))), None);
    let out = room(&mut d, vec![]);
    assert!(read_room(&out).is_some(), "the change during the read");
    // room for n3 now: it starts beside n2, still draining; nothing waits, the watch stops
    let out = room(&mut d, vec![2]);
    assert_eq!(
        events(&out)[0],
        Event::WaveStarted {
            wave: 2,
            of: 2,
            nodes: vec!["n3".into()],
            waiting_for_room: vec![],
        }
    );
    assert_eq!(sent(&out), ["c"]);
    assert!(out.contains(&Command::StopWatchingNodes));
    assert!(d.core.nodes[1].outcome.is_none(), "n2 still draining");
    drain_node(&mut d, 1, "b");
    drain_node(&mut d, 2, "c");
    assert!(d.core.finished());
}

#[test]
fn with_parallel_nodes_all_running_the_room_is_read_when_one_ends() {
    let mut d = waiting(opts());
    d.core.opts.parallel_nodes = 1;
    d.start();
    let out = d.on(Input::Room {
        fits: Ok(vec![]),
        nodes: Some(NodesSeen {
            usable: Default::default(),
            resource_version: "1".into(),
        }),
    });
    assert_eq!(watch_nodes(&out).as_deref(), Some("1"));
    // n1 runs and takes the one place: a node back does not read the room
    assert_eq!(read_room(&d.on(node_seen(node("spare", false)))), None);
    // n1 ends: the room is read for one node
    let out = drain_node(&mut d, 0, "a");
    assert_eq!(read_room(&out).map(|r| r.2), Some(1));
}

#[test]
fn a_node_uncordoned_is_room_once_its_unschedulable_taint_is_gone() {
    let mut d = waiting(opts());
    d.start();
    drain_node(&mut d, 0, "a");
    room(&mut d, vec![]);
    d.on(Input::Room {
        fits: Ok(vec![]),
        nodes: Some(NodesSeen {
            usable: Default::default(),
            resource_version: "1".into(),
        }),
    });
    // uncordoned, the lifecycle controller's taint still there: read (it may be room)...
    let mut n1 = node("n1", false);
    n1.spec.as_mut().unwrap().taints = Some(vec![k8s_openapi::api::core::v1::Taint {
        key: "node.kubernetes.io/unschedulable".into(),
        effect: "NoSchedule".into(),
        ..Default::default()
    }]);
    assert!(read_room(&d.on(node_seen(n1))).is_some());
    room(&mut d, vec![]);
    // ...and read again when the taint goes, the node otherwise unchanged
    assert!(read_room(&d.on(node_seen(node("n1", false)))).is_some());
    room(&mut d, vec![]);
    // the same node seen again changes nothing
    assert!(read_room(&d.on(node_seen(node("n1", false)))).is_none());
}

fn nodes_change(change: Change<k8s_openapi::api::core::v1::Node>) -> Input {
    Input::Nodes(Box::new(Seen {
        source: usize::MAX - 1,
        change,
    }))
}

#[test]
fn a_refused_node_watch_is_said_once_and_its_lists_still_start_waiting_nodes() {
    let mut d = waiting(opts());
    d.start();
    drain_node(&mut d, 0, "a");
    let out = d.on(Input::Room {
        fits: Ok(vec![]),
        nodes: Some(NodesSeen {
            usable: Default::default(),
            resource_version: "7".into(),
        }),
    });
    assert_eq!(watch_nodes(&out).as_deref(), Some("7"));
    // the server refuses the watch (a role without watch on nodes): said once, nothing read
    let forbidden = "nodes is forbidden: User \"kdrain\" cannot watch resource \"nodes\"";
    let out = d.on(nodes_change(Change::Refused(forbidden.into())));
    assert_eq!(
        events(&out),
        [Event::WatchRefused {
            resource: "nodes".into(),
            error: forbidden.into(),
            fallback: "following the nodes by listing them every few seconds instead: a node waiting for room may start up to 5s after room appears (grant watch on nodes to start it at once)".into(),
        }]
    );
    assert_eq!(read_room(&out), None);
    // refused again after the watch's next list: not said again
    let again = d.on(nodes_change(Change::Refused(forbidden.into())));
    assert!(events(&again).is_empty(), "{again:?}");
    // the list the watch falls back to shows n1 back: the room is read, n2 starts
    let out = d.on(nodes_change(Change::Relisted(vec![
        node("n1", false),
        node("n2", true),
        node("n3", true),
    ])));
    let (candidates, _, _) = read_room(&out).expect("read when the list shows n1 back");
    assert_eq!(candidates[0].0, 1);
    let out = room(&mut d, vec![1]);
    assert_eq!(sent(&out), ["b"]);
}
