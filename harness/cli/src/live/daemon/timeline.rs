//! `nslab up --timeline`: the scenario's timeline played on the running lab.

use tokio::sync::watch;

use nslab_scenario::scenario::{Action, When};

use super::handler::Shared;

/// Plays the scenario's timeline, holding the lab only while a step runs (so commands typed
/// meanwhile are served). Ends early when the lab goes down.
pub(super) async fn play_timeline(session: Shared, mut stop: watch::Receiver<bool>) {
    let (steps, epoch) = {
        let guard = session.lock().await;
        let Some(s) = guard.as_ref() else { return };
        (&s.scenario().timeline, s.lab().epoch())
    };
    let t0 = epoch.elapsed();
    for (i, step) in steps.iter().enumerate() {
        let wait = match step.when {
            When::At(at) => (t0 + at).saturating_sub(epoch.elapsed()),
            When::AfterPrevious(d) => d,
        };
        let wait = match &step.action {
            Action::Wait { duration } => wait + *duration,
            _ => wait,
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        if matches!(step.action, Action::Wait { .. }) {
            continue;
        }
        let mut guard = session.lock().await;
        let Some(s) = guard.as_mut() else { return };
        match s.step(i).await {
            Ok(()) => eprintln!("+{:.3}s timeline step {} ({}) done", s.lab().elapsed().as_secs_f64(), i + 1, step.action.kind()),
            Err(e) => eprintln!("+{:.3}s timeline: {}", s.lab().elapsed().as_secs_f64(), e.reason()),
        }
    }
    eprintln!("timeline finished");
}
