//! A node's end: the final LIST, the deadline with answers in flight, a stop, and pods that
//! land on the node during its drain.

use super::*;
use crate::report::NodeOutcome;

fn with_timeout(s: f64) -> DrainOptions {
    DrainOptions {
        timeout: Some(secs(s)),
        ..opts()
    }
}

fn pod_error(d: &Drain, name: &str) -> String {
    match d.outcome(name) {
        PodOutcome::Failed { error, .. } => error,
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_final_list_finding_a_pod_gone_still_present_drains_it_again() {
    let mut d = Drain::new(opts(), vec![pod("a", "n1", "web")], vec![]);
    d.start();
    d.answer("a", Attempt::Accepted);
    let c = d.pod_gone(0, pod("a", "n1", "web"));
    assert_eq!(lists(&c), [(0, ListPurpose::Final)]);
    // never report a pod gone that a fresh list still shows
    let c = d.listed(0, ListPurpose::Final, vec![pod("a", "n1", "web")]);
    assert!(
        !events(&c)
            .iter()
            .any(|e| matches!(e, Event::NodeDrained { .. }))
    );
    assert!(lists(&c).is_empty());
    assert!(!d.core.finished());
    assert_eq!(d.reports()[0].pods[0].gone, None);
    // accepted already: followed, not sent again
    assert!(sent(&c).is_empty());
    let c = d.pod_gone(0, pod("a", "n1", "web"));
    assert_eq!(lists(&c), [(0, ListPurpose::Final)]);
    let c = d.listed(0, ListPurpose::Final, vec![]);
    assert!(
        events(&c)
            .iter()
            .any(|e| matches!(e, Event::NodeDrained { .. }))
    );
    assert!(d.core.finished());
    assert_eq!(d.reports()[0].outcome, NodeOutcome::Drained);
}

#[test]
fn a_failed_final_list_is_retried_a_second_later() {
    let mut d = Drain::new(opts(), vec![pod("a", "n1", "web")], vec![]);
    d.start();
    d.answer("a", Attempt::Gone);
    let c = d.on(Input::Listed {
        node: 0,
        purpose: ListPurpose::Final,
        result: Err("connection reset".into()),
    });
    assert!(lists(&c).is_empty());
    assert_eq!(d.wake_at(), Some(secs(1.0)));
    assert_eq!(lists(&d.tick_at(secs(1.0))), [(0, ListPurpose::Final)]);
}

#[test]
fn at_the_deadline_the_answers_in_flight_come_first() {
    let mut d = Drain::new(with_timeout(10.0), vec![pod("a", "n1", "web")], vec![]);
    d.start();
    assert_eq!(d.wake_at(), Some(secs(10.0)));
    // the deadline passes with a's eviction unanswered: no catch-up LIST yet
    assert!(lists(&d.tick_at(secs(10.0))).is_empty());
    assert_eq!(
        d.wake_at(),
        Some(secs(20.0)),
        "IN_FLIGHT_GRACE after the deadline"
    );
    assert!(lists(&d.tick_at(secs(19.9))).is_empty());
    // accepted after the deadline: reported as accepted, not as blocked
    let c = d.answer("a", Attempt::Accepted);
    assert_eq!(lists(&c), [(0, ListPurpose::CatchUp)]);
    let c = d.listed(0, ListPurpose::CatchUp, vec![pod("a", "n1", "web")]);
    assert!(
        events(&c)
            .iter()
            .any(|e| matches!(e, Event::NodeFailed { .. }))
    );
    assert_eq!(
        pod_error(&d, "a"),
        "global timeout reached: 10s (waiting for it to terminate)"
    );
    assert_eq!(d.reports()[0].pods[0].accepted, Some(wall(19.9)));
    assert_eq!(d.reports()[0].outcome, NodeOutcome::PodsLeft);
}

#[test]
fn an_answer_that_never_comes_is_waited_for_only_so_long() {
    let mut d = Drain::new(with_timeout(10.0), vec![pod("a", "n1", "web")], vec![]);
    d.start();
    d.tick_at(secs(10.0));
    assert_eq!(lists(&d.tick_at(secs(20.0))), [(0, ListPurpose::CatchUp)]);
    d.listed(0, ListPurpose::CatchUp, vec![pod("a", "n1", "web")]);
    assert_eq!(
        pod_error(&d, "a"),
        "global timeout reached: 10s (no answer to the last request yet; it may still be carried out)"
    );
    // the answer after the node's end changes nothing
    d.answer("a", Attempt::Accepted);
    assert!(d.core.finished());
}

#[test]
fn the_catch_up_list_finds_pods_the_watch_has_not_reported_gone() {
    let mut d = Drain::new(
        with_timeout(10.0),
        vec![pod("a", "n1", "web"), pod("b", "n1", "web")],
        vec![],
    );
    d.start();
    d.answer("a", Attempt::Accepted);
    d.answer("b", Attempt::Accepted);
    assert_eq!(lists(&d.tick_at(secs(10.0))), [(0, ListPurpose::CatchUp)]);
    // only b is still there
    let c = d.listed(0, ListPurpose::CatchUp, vec![pod("b", "n1", "web")]);
    assert!(
        events(&c)
            .iter()
            .any(|e| matches!(e, Event::Gone { pod, .. } if pod.name == "a"))
    );
    assert_eq!(d.outcome("a"), PodOutcome::Gone);
    assert!(pod_error(&d, "b").starts_with("global timeout reached"));
}

#[test]
fn a_pod_still_blocked_by_its_budget_at_the_deadline_is_blocked() {
    let mut d = Drain::new(
        with_timeout(10.0),
        vec![pod("a", "n1", "web")],
        vec![pdb("web", "web", 0, 1, 1, &[])],
    );
    assert!(sent(&d.start()).is_empty());
    assert_eq!(lists(&d.tick_at(secs(10.0))), [(0, ListPurpose::CatchUp)]);
    d.listed(0, ListPurpose::CatchUp, vec![pod("a", "n1", "web")]);
    assert_eq!(d.outcome("a"), PodOutcome::Blocked);
    let report = &d.reports()[0];
    assert_eq!(report.outcome, NodeOutcome::BlockedByBudgets);
    assert_eq!(report.pods[0].blocked_by.as_deref(), Some("web"));
    assert_eq!(report.pods[0].blocked_seconds, 10.0);
}

#[test]
fn a_stop_sends_nothing_more_and_waits_for_the_answers() {
    let mut d = Drain::new(
        DrainOptions {
            max_concurrent_evictions: 1,
            ..opts()
        },
        vec![pod("a", "n1", "web"), pod("b", "n1", "web")],
        vec![],
    );
    assert_eq!(sent(&d.start()), ["a"]);
    let c = d.on(Input::Stop);
    assert!(lists(&c).is_empty(), "a's answer first");
    let c = d.answer("a", Attempt::Accepted);
    assert!(sent(&c).is_empty(), "b is not sent after the stop");
    assert_eq!(lists(&c), [(0, ListPurpose::CatchUp)]);
    d.listed(
        0,
        ListPurpose::CatchUp,
        vec![pod("a", "n1", "web"), pod("b", "n1", "web")],
    );
    assert_eq!(
        pod_error(&d, "a"),
        "interrupted (waiting for it to terminate)"
    );
    assert_eq!(
        pod_error(&d, "b"),
        "interrupted (not sent yet (earlier tiers still draining))"
    );
    assert!(d.core.finished());
}

#[test]
fn a_stop_before_the_start_drains_nothing() {
    let mut d = Drain::new(opts(), vec![pod("a", "n1", "web")], vec![]);
    let c = d.on(Input::Stop);
    assert!(
        events(&c)
            .iter()
            .any(|e| matches!(e, Event::NodeFailed { .. }))
    );
    let c = d.start();
    assert!(c.is_empty(), "{c:?}");
    assert!(d.core.finished());
    assert_eq!(
        pod_error(&d, "a"),
        "interrupted before this node's drain started"
    );
}

/// A DaemonSet pod bound to `node`.
fn daemon_pod(name: &str, node: &str) -> Pod {
    let mut p = pod(name, node, "agent");
    p.metadata.owner_references.as_mut().expect("owner")[0].kind = "DaemonSet".into();
    p
}

#[test]
fn a_daemonset_pod_landing_during_the_drain_waits_for_its_lookup() {
    let mut d = Drain::new(
        DrainOptions {
            ignore_daemonsets: true,
            ..opts()
        },
        vec![pod("a", "n1", "web")],
        vec![],
    );
    d.start();
    let c = d.pod_changed(0, daemon_pod("agent-1", "n1"));
    assert_eq!(
        c,
        [Command::LookUpDaemonSet {
            node: 0,
            namespace: "default".into(),
            name: "agent".into()
        }]
    );
    // a second pod of the same DaemonSet: no second lookup
    assert!(d.pod_changed(0, daemon_pod("agent-2", "n1")).is_empty());
    d.answer("a", Attempt::Gone);
    // the node is not closed while a new pod waits for its lookup
    let c = d.pod_gone(0, pod("a", "n1", "web"));
    assert!(lists(&c).is_empty());
    let c = d.on(Input::DaemonSet {
        namespace: "default".into(),
        name: "agent".into(),
        lookup: crate::select::DaemonSetLookup::Found,
    });
    let skipped: Vec<String> = events(&c)
        .into_iter()
        .filter_map(|e| match e {
            Event::Skipped { pod, .. } => Some(pod.name),
            _ => None,
        })
        .collect();
    assert_eq!(skipped, ["agent-1", "agent-2"]);
    assert_eq!(lists(&c), [(0, ListPurpose::Final)]);
    let c = d.listed(
        0,
        ListPurpose::Final,
        vec![daemon_pod("agent-1", "n1"), daemon_pod("agent-2", "n1")],
    );
    assert!(
        events(&c)
            .iter()
            .any(|e| matches!(e, Event::NodeDrained { .. }))
    );
}

#[test]
fn the_next_node_starts_when_one_ends() {
    let a = pod("a", "n1", "web");
    let b = pod("b", "n2", "web");
    let (pa, pb) = (evict(&a), evict(&b));
    let mut d = Drain::planned(
        opts(),
        vec![("n1", vec![a], vec![pa]), ("n2", vec![b], vec![pb])],
        vec![],
    );
    assert_eq!(sent(&d.start()), ["a"], "one node at a time, like kubectl");
    d.answer("a", Attempt::Gone);
    let c = d.listed(0, ListPurpose::Final, vec![]);
    assert!(c.contains(&Command::StopWatchingPods { node: 0 }));
    assert!(c.contains(&Command::WatchPods {
        node: 1,
        name: "n2".into(),
        resource_version: "10".into()
    }));
    assert_eq!(sent(&c), ["b"]);
}

#[test]
fn the_next_wave_starts_when_every_node_of_the_wave_before_has_ended() {
    let a = pod("a", "n1", "web");
    let b = pod("b", "n2", "web");
    let c = pod("c", "n3", "web");
    let (pa, pb, pc) = (evict(&a), evict(&b), evict(&c));
    let mut d = Drain::planned(
        DrainOptions {
            parallel_nodes: 2,
            ..opts()
        },
        vec![
            ("n1", vec![a], vec![pa]),
            ("n2", vec![b], vec![pb]),
            ("n3", vec![c], vec![pc]),
        ],
        vec![],
    );
    // the plan put the slow n3 with n1, and n2 alone after them
    d.core.waves = vec![vec![0, 2], vec![1]];
    let out = d.start();
    assert_eq!(sent(&out), ["a", "c"]);
    assert_eq!(
        events(&out)[0],
        Event::WaveStarted {
            wave: 1,
            of: 2,
            nodes: vec!["n1".into(), "n3".into()],
            waiting_for_room: vec![],
        }
    );
    d.answer("a", Attempt::Gone);
    let out = d.listed(0, ListPurpose::Final, vec![]);
    // n1 ended, n3 has not: n2 waits (sliding lanes would have started it here)
    assert!(sent(&out).is_empty());
    assert!(!out.iter().any(|c| matches!(c, Command::WatchPods { .. })));
    d.answer("c", Attempt::Gone);
    let out = d.listed(2, ListPurpose::Final, vec![]);
    assert!(events(&out).contains(&Event::WaveStarted {
        wave: 2,
        of: 2,
        nodes: vec!["n2".into()],
        waiting_for_room: vec![],
    }));
    assert!(out.contains(&Command::WatchPods {
        node: 1,
        name: "n2".into(),
        resource_version: "10".into()
    }));
    assert_eq!(sent(&out), ["b"]);
    d.answer("b", Attempt::Gone);
    d.listed(1, ListPurpose::Final, vec![]);
    assert!(d.core.finished());
    assert!(
        d.reports()
            .iter()
            .all(|r| r.outcome == NodeOutcome::Drained)
    );
}

#[test]
fn changes_that_arrive_together_lead_where_they_lead_one_by_one() {
    // the shell hands the core whatever has already arrived at once: answers and deletions in
    // one batch end the node as they do one after the other, with one final LIST
    let pods = || {
        vec![
            pod("a", "n1", "web"),
            pod("b", "n1", "web"),
            pod("c", "n1", "web"),
        ]
    };
    let inputs = || {
        let answer = |p: &str, attempt| {
            Input::Answer(Answer {
                uid: format!("uid-{p}"),
                attempt,
            })
        };
        let gone = |p: &str| {
            Input::Pods(Box::new(Seen {
                source: 0,
                change: Change::Removed(pod(p, "n1", "web")),
            }))
        };
        vec![
            answer("a", Attempt::Accepted),
            answer("b", Attempt::Accepted),
            gone("a"),
            answer("c", Attempt::Gone),
            gone("b"),
        ]
    };
    let mut one = Drain::new(opts(), pods(), vec![]);
    let mut together = Drain::new(opts(), pods(), vec![]);
    assert_eq!(sent(&one.start()), sent(&together.start()));
    let mut by_one = Vec::new();
    for input in inputs() {
        by_one.extend(one.on(input));
    }
    let at_once = together.on_all(inputs());
    assert_eq!(lists(&by_one), [(0, ListPurpose::Final)]);
    assert_eq!(lists(&at_once), lists(&by_one));
    assert!(sent(&at_once).is_empty() && sent(&by_one).is_empty());
    for d in [&mut one, &mut together] {
        d.listed(0, ListPurpose::Final, vec![]);
        assert!(d.core.finished());
        assert_eq!(d.reports()[0].outcome, NodeOutcome::Drained);
        for p in ["a", "b", "c"] {
            assert_eq!(d.outcome(p), PodOutcome::Gone, "{p}");
        }
    }
}
