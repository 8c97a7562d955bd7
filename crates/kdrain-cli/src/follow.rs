//! Following a NodeDrain from the command line: one line each time what it does changes (its
//! phase, its progress, what blocks it), until its stage ends; the exit code is `kdrain drain`'s.
//! Ctrl-C stops following only: the drain goes on in the cluster.

use kdrain_controller::stage::goal;
use kdrain_controller::{NodeDrain, Phase, Stage};
use kube::Api;

use crate::controller_cmd::{FOLLOW_EVERY, exit_code};

/// The line printed for a NodeDrain's state (None before the controller wrote a status).
pub fn line(nd: &NodeDrain) -> Option<String> {
    let s = nd.status.as_ref()?;
    let phase = s.phase?;
    let pods = s.pods_summary.clone().unwrap_or_else(|| "-".into());
    let nodes = s.nodes_summary.clone().unwrap_or_else(|| "-".into());
    let condition = |t: &str| {
        s.conditions
            .iter()
            .find(|c| c.type_ == t)
            .map(|c| c.message.clone())
    };
    let detail = match phase {
        Phase::Pending => Some("planning".to_string()),
        Phase::Planned | Phase::Refused => condition("Planned"),
        Phase::Cordoned => condition("Drained")
            .filter(|_| {
                s.conditions
                    .iter()
                    .any(|c| c.reason == "WaitingForCapacity")
            })
            .or_else(|| condition("Cordoned")),
        Phase::Draining => s
            .blocked_by
            .as_ref()
            .map(|b| format!("blocked by {b}"))
            .or_else(|| Some("evicting".into())),
        Phase::Drained | Phase::Failed => condition("Drained"),
        Phase::Completed => condition("Cordoned"),
    }
    .unwrap_or_default();
    Some(format!(
        "{:<9} nodes {nodes:<5} pods gone {pods:<7} {detail}",
        format!("{phase:?}")
    ))
}

/// True when the NodeDrain reached the end of `stage` (or was refused, or failed).
pub fn ended(nd: &NodeDrain, stage: Stage) -> bool {
    let Some(s) = &nd.status else { return false };
    if s.observed_generation != nd.metadata.generation {
        return false;
    }
    matches!(s.phase, Some(p) if p == goal(stage) || p == Phase::Refused || p == Phase::Failed)
}

/// Prints NodeDrain `name`'s progress until its stage ends; returns the exit code.
pub async fn follow(api: &Api<NodeDrain>, name: &str, stage: Stage) -> anyhow::Result<i32> {
    let mut last = None;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let nd = api.get(name).await?;
        if let Some(l) = line(&nd)
            && last.as_ref() != Some(&l)
        {
            println!("{name}  {l}");
            last = Some(l);
        }
        if ended(&nd, stage) {
            return Ok(exit_code(&nd));
        }
        tokio::select! {
            _ = &mut ctrl_c => {
                eprintln!(
                    "stopped following; the drain goes on in the cluster: `kubectl get nodedrain {name} -w` to watch it, `kubectl delete nodedrain {name}` to stop it and uncordon what it cordoned"
                );
                return Ok(crate::render::INTERRUPTED);
            }
            _ = tokio::time::sleep(FOLLOW_EVERY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit;
    use kdrain_controller::{NodeDrainSpec, NodeDrainStatus};

    #[test]
    fn a_line_says_phase_progress_and_what_blocks() {
        let mut nd = NodeDrain::new("n1-drain", NodeDrainSpec::default());
        assert_eq!(line(&nd), None);
        nd.status = Some(NodeDrainStatus {
            phase: Some(Phase::Draining),
            pods_summary: Some("1/3".into()),
            nodes_summary: Some("0/1".into()),
            blocked_by: Some("budget shop/web needs 2 has 2 (2 pods)".into()),
            ..Default::default()
        });
        assert_eq!(
            line(&nd).unwrap(),
            "Draining  nodes 0/1   pods gone 1/3     blocked by budget shop/web needs 2 has 2 (2 pods)"
        );
        assert!(!ended(&nd, Stage::Drain));
        nd.metadata.generation = Some(1);
        nd.status.as_mut().unwrap().observed_generation = Some(1);
        nd.status.as_mut().unwrap().phase = Some(Phase::Drained);
        assert!(ended(&nd, Stage::Drain));
        assert_eq!(exit_code(&nd), exit::OK);
    }
}
