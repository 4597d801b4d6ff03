//! `stop`, `rm`, `ps` and `logs` for add-ons started in Docker, found by their record in the
//! state directory (full slug, or a plain slug when unique).

use std::io::Write;

use bollard::query_parameters::{
    ListContainersOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder,
};
use futures_util::StreamExt;

use super::body::{LABEL_CONFINEMENT, LABEL_SLUG};
use super::host;
use super::state::Record;
use super::{LaunchError, Launcher, PsEntry, docker_err, status_of};

impl Launcher {
    /// The container name of a started add-on (full slug, or a plain slug when unique).
    fn resolve(&self, slug: &str) -> Result<Record, LaunchError> {
        if let Some(r) = self.state.read_record(slug) {
            return Ok(r);
        }
        let matches: Vec<Record> = self
            .state
            .records()
            .into_iter()
            .filter(|r| r.full_slug.split_once('_').is_some_and(|(_, s)| s == slug))
            .collect();
        match matches.as_slice() {
            [one] => Ok(one.clone()),
            _ => Err(LaunchError::Unknown(slug.to_owned())),
        }
    }

    pub async fn stop(&self, slug: &str) -> Result<(), LaunchError> {
        let record = self.resolve(slug)?;
        let _lock = self.state.lock(&record.full_slug)?;
        let opts = StopContainerOptionsBuilder::new().t(10).build();
        match self
            .call(
                "stop",
                self.docker
                    .stop_container(&record.container_name, Some(opts)),
            )
            .await?
        {
            Ok(()) => Ok(()),
            Err(e) if matches!(status_of(&e), Some(304)) => Ok(()),
            Err(e) => Err(docker_err("stop", e)),
        }
    }

    /// Remove the container, unload and delete its profile, forget its token; data stays.
    pub async fn rm(&self, slug: &str) -> Result<(), LaunchError> {
        let record = self.resolve(slug)?;
        let _lock = self.state.lock(&record.full_slug)?;
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
        Ok(())
    }

    pub async fn ps(&self) -> Result<Vec<PsEntry>, LaunchError> {
        let filters = std::collections::HashMap::from([("label", vec![LABEL_SLUG])]);
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
                }
            })
            .collect();
        out.sort_by(|a, b| a.full_slug.cmp(&b.full_slug));
        Ok(out)
    }

    /// Copy the container's output to `out`; with `follow`, until the container stops.
    pub async fn logs(
        &self,
        slug: &str,
        follow: bool,
        out: &mut impl Write,
    ) -> Result<(), LaunchError> {
        let record = self.resolve(slug)?;
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
