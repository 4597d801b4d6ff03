//! Image trust at launch (issue 19): the verdict read from the trust cache before anything is
//! created, then the engine's image compared with what was verified. A verified image is
//! created by its image ID, so what was verified is what runs; under `require` anything else
//! is refused, under `warn` it runs by its reference with a warning.

use super::{LaunchError, Launcher, docker_err, status_of};
use crate::trust::{self, Mode, Verdict};

/// What `run` verifies against: the operator's policy, the host architecture, the trusted
/// root (the shipped one unless the policy names another).
#[derive(Clone, Debug)]
pub struct TrustSettings {
    pub policy: trust::TrustPolicy,
    pub arch: String,
    pub root: Option<sigstore_trust_root::TrustedRoot>,
}

impl Launcher {
    /// The verdict from the cache alone (no engine, no network); a refusal under `require`.
    pub(super) fn trust_verdict(
        &self,
        image: &str,
        settings: Option<&TrustSettings>,
        warnings: &mut Vec<String>,
    ) -> Result<Option<Verdict>, LaunchError> {
        let Some(settings) = settings else {
            return Ok(None);
        };
        let cache = trust::Cache::of_state(self.state.root());
        let verdict = trust::check(
            &settings.policy,
            &cache,
            image,
            &settings.arch,
            settings.root.as_ref(),
        )
        .map_err(|e| LaunchError::Untrusted(format!("{image}: {e}")))?;
        let hint = self.fetch_hint();
        if let Some(problem) = verdict.problem(&hint) {
            match verdict.mode {
                Mode::Require => return Err(LaunchError::Untrusted(problem)),
                _ => warnings.push(format!(
                    "image not verified (trust policy: warn): {problem}"
                )),
            }
        }
        Ok(Some(verdict))
    }

    /// `--state-dir DIR` for the fetch command a message suggests, when it is not the default.
    fn fetch_hint(&self) -> String {
        format!(" --state-dir {}", self.state.root().display())
    }

    /// The image is on this host, and for a verified verdict the engine's image ID is the
    /// verified config digest; returns what to create the container from.
    pub(super) async fn image_to_run(
        &self,
        image: &str,
        verdict: Option<&Verdict>,
        warnings: &mut Vec<String>,
    ) -> Result<String, LaunchError> {
        let found = match self
            .call("inspect image", self.docker.inspect_image(image))
            .await?
        {
            Ok(found) => found,
            Err(e) if status_of(&e) == Some(404) => {
                return Err(LaunchError::ImageMissing(image.to_owned()));
            }
            Err(e) => return Err(docker_err("inspect image", e)),
        };
        let Some(verdict) = verdict.filter(|v| v.verified()) else {
            return Ok(image.to_owned());
        };
        let verified = verdict.config.clone().unwrap_or_default();
        let engine = found.id.unwrap_or_default();
        if engine == verified {
            return Ok(verified);
        }
        let problem = format!(
            "the engine's {image} is {engine}, but the verified image is {verified} ({} signed by its signer): the tag moved after verification; pull the verified one (docker pull {}@{}) or verify the new one (addon-sandbox trust fetch{} {image})",
            verdict.image,
            trust::Reference::parse(&verdict.image)
                .map_or_else(|_| verdict.image.clone(), |r| r.name()),
            verdict.digest.as_deref().unwrap_or("?"),
            self.fetch_hint()
        );
        match verdict.mode {
            Mode::Require => Err(LaunchError::Untrusted(problem)),
            _ => {
                warnings.push(format!(
                    "image not verified (trust policy: warn): {problem}"
                ));
                Ok(image.to_owned())
            }
        }
    }
}
