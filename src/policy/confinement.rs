//! How the container is confined: the AppArmor profile (the generated one in strict mode
//! unless `unconfined` is granted; the Supervisor's choice otherwise), seccomp and
//! no-new-privileges, and the Docker security options that say so.

use crate::plan::Confinement;
use crate::rating::ApparmorMode;

use super::{Decision, Right};

/// The confinement decided for the container.
pub(super) struct Security {
    pub confinement: Confinement,
    pub apparmor_profile: Option<String>,
    pub seccomp_unconfined: bool,
    pub no_new_privileges: bool,
    pub security_opt: Vec<String>,
}

impl Decision<'_> {
    pub(super) fn security(&mut self) -> Security {
        let strict = self.strict();
        let (confinement, apparmor_profile) = self.apparmor();
        let seccomp_unconfined = !strict || self.grant_used(Right::SeccompUnconfined);
        let no_new_privileges = strict && !self.grant_used(Right::NewPrivileges);
        let mut security_opt = Vec::new();
        if strict {
            match &apparmor_profile {
                Some(p) => security_opt.push(["apparmor=", p].concat()),
                None => security_opt.push("apparmor=unconfined".into()),
            }
            if no_new_privileges {
                security_opt.push("no-new-privileges:true".into());
            }
            if seccomp_unconfined {
                security_opt.push("seccomp=unconfined".into());
            }
        } else {
            security_opt.push("seccomp=unconfined".into());
            match confinement {
                Confinement::Unconfined => security_opt.push("apparmor=unconfined".into()),
                Confinement::AddonProfile => {
                    security_opt.push(["apparmor=", &self.full_slug].concat())
                }
                _ => {}
            }
        }
        Security {
            confinement,
            apparmor_profile,
            seccomp_unconfined,
            no_new_privileges,
            security_opt,
        }
    }

    /// The AppArmor confinement and the profile's name, if one is loaded.
    fn apparmor(&mut self) -> (Confinement, Option<String>) {
        if self.strict() {
            if !self.config.apparmor
                && self.allow(
                    Right::Unconfined,
                    "protection mode always confines with the generated profile",
                )
            {
                (Confinement::Unconfined, None)
            } else {
                (Confinement::Generated, Some(self.full_slug.clone()))
            }
        } else {
            match self.apparmor_mode {
                ApparmorMode::Disable => (Confinement::Unconfined, None),
                ApparmorMode::Profile => (Confinement::AddonProfile, Some(self.full_slug.clone())),
                ApparmorMode::Default => (Confinement::DockerDefault, None),
            }
        }
    }
}
