//! `stop`, `rm`, `ps` and `logs` for add-ons started in Docker, given their record in the state
//! directory (the command line finds it with [`super::state::StateDir::resolve`]).

use std::io::Write;

use bollard::query_parameters::{
    ListContainersOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder,
};
use futures_util::StreamExt;

/// Seconds `stop` gives an add-on to exit before it is killed (the Supervisor's default).
const STOP_GRACE: i32 = 10;

use super::body::{LABEL_CONFINEMENT, LABEL_SLUG, LABEL_STATE};
use super::host;
use super::state::{AddonLock, Record};
use super::{LaunchError, Launcher, PsEntry, docker_err, status_of};

impl Launcher {
    /// The add-on's lock; when another command holds it, `note` says so before waiting.
    fn lock_for(
        &self,
        record: &Record,
        note: &mut dyn FnMut(&str),
    ) -> Result<AddonLock, LaunchError> {
        Ok(self.state.lock_noting_wait(&record.full_slug, |file| {
            note(&format!(
                "waiting for another addon-sandbox command working on {} (it holds {})",
                record.full_slug,
                file.display()
            ))
        })?)
    }

    /// Stop the container (it stays, so `logs` still works) and revoke its token: a stopped
    /// add-on's token opens nothing, and a start makes a new one. `note` is told what is waited
    /// for.
    pub async fn stop(
        &self,
        record: &Record,
        note: &mut dyn FnMut(&str),
    ) -> Result<(), LaunchError> {
        let lock = self.lock_for(record, note)?;
        note(&format!(
            "stopping {} (container {}): waiting up to {STOP_GRACE} s for it to exit, then it is killed",
            record.full_slug, record.container_name
        ));
        let opts = StopContainerOptionsBuilder::new().t(STOP_GRACE).build();
        // The engine's own wait comes on top of the answer time.
        let wait = self.timeout + std::time::Duration::from_secs(STOP_GRACE as u64);
        let stopped = tokio::time::timeout(
            wait,
            self.docker
                .stop_container(&record.container_name, Some(opts)),
        )
        .await
        .map_err(|_| LaunchError::Timeout {
            what: "stop",
            secs: wait.as_secs(),
        })?;
        match stopped {
            Ok(()) => {}
            Err(e) if matches!(status_of(&e), Some(304)) => {}
            Err(e) if status_of(&e) == Some(404) => {}
            Err(e) => return Err(docker_err("stop", e)),
        }
        self.state.revoke_token(&record.full_slug)?;
        drop(lock);
        Ok(())
    }

    /// Remove the container, unload and delete its profile, forget its token and record, and
    /// the add-on's lock and folder in the state directory; its data stays.
    pub async fn rm(&self, record: &Record, note: &mut dyn FnMut(&str)) -> Result<(), LaunchError> {
        let lock = self.lock_for(record, note)?;
        let opts = RemoveContainerOptionsBuilder::new().force(true).build();
        match self
            .call(
                "remove",
                self.docker
                    .remove_container(&record.container_name, Some(opts)),
            )
            .await?
        {
            Ok(()) => {}
            Err(e) if status_of(&e) == Some(404) => {}
            Err(e) => return Err(docker_err("remove", e)),
        }
        if let Some(name) = record.confinement.strip_prefix("apparmor:") {
            let file = self.state.profile_path(name);
            if file.exists() {
                host::unload_profile(&file)?;
                std::fs::remove_file(&file)?;
            }
        }
        self.state.forget(&record.full_slug);
        self.state.release(lock);
        Ok(())
    }

    /// The engine's add-on containers: those of this state directory, or with `all` every one
    /// any state directory started (each then names its state directory).
    pub async fn ps(&self, all: bool) -> Result<Vec<PsEntry>, LaunchError> {
        let own = format!("{LABEL_STATE}={}", self.state.root().display());
        let label = if all { LABEL_SLUG } else { own.as_str() };
        let filters = std::collections::HashMap::from([("label", vec![label])]);
        let opts = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .call("list", self.docker.list_containers(Some(opts)))
            .await?
            .map_err(|e| docker_err("list", e))?;
        let mut out: Vec<PsEntry> = list
            .into_iter()
            .map(|c| {
                let labels = c.labels.unwrap_or_default();
                PsEntry {
                    full_slug: labels.get(LABEL_SLUG).cloned().unwrap_or_default(),
                    container_name: c
                        .names
                        .and_then(|n| n.first().cloned())
                        .unwrap_or_default()
                        .trim_start_matches('/')
                        .to_owned(),
                    state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                    status: c.status.unwrap_or_default(),
                    image: c.image.unwrap_or_default(),
                    confinement: labels.get(LABEL_CONFINEMENT).cloned().unwrap_or_default(),
                    state_dir: all.then(|| labels.get(LABEL_STATE).cloned().unwrap_or_default()),
                }
            })
            .collect();
        out.sort_by(|a, b| a.full_slug.cmp(&b.full_slug));
        Ok(out)
    }

    /// Copy the container's output to `out`; with `follow`, until the container stops.
    pub async fn logs(
        &self,
        record: &Record,
        follow: bool,
        out: &mut impl Write,
    ) -> Result<(), LaunchError> {
        let opts = LogsOptionsBuilder::new()
            .follow(follow)
            .stdout(true)
            .stderr(true)
            .build();
        let mut stream = self.docker.logs(&record.container_name, Some(opts));
        loop {
            // Without --follow a stalled stream is a slow engine; with it, silence is normal.
            let next = if follow {
                stream.next().await
            } else {
                tokio::time::timeout(self.timeout, stream.next())
                    .await
                    .map_err(|_| LaunchError::Timeout {
                        what: "logs",
                        secs: self.timeout.as_secs(),
                    })?
            };
            match next {
                None => return Ok(()),
                Some(Ok(chunk)) => out.write_all(&chunk.into_bytes())?,
                Some(Err(e)) => return Err(docker_err("logs", e)),
            }
        }
    }
}
