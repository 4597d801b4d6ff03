//! The learning plan: what the container gets while learning, wider than the config's own
//! plan, so that the kernel can see an access the config's profile would refuse.
//!
//! Without it learn would see nothing: a right the config lacks is missing from the container
//! as well as from the profile (no mount at `/share`, no capability in the bounding set, no
//! device node), and the kernel refuses those before AppArmor is asked, without a record. So the
//! container runs with more (every folder mounted writable, the host's device classes, and on
//! request the `privileged` capabilities) while the profile stays the config's own, in complain
//! mode: each use of the extra rights is recorded as the profile's refusal, and nothing else is.
//! The extra rights go through the policy like any config key; the ones strict protection
//! withholds are granted for the learning run only.

use serde::Serialize;

use super::edit::Edit;
use crate::config::{AddonConfig, Capability, MapType};
use crate::plan::SandboxPlan;
use crate::policy::{self, PlanOptions, PolicyError, Right};

/// A family of rights learn may widen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Widen {
    /// Every folder a `map` entry can name, writable (point the data root at scratch folders).
    Maps,
    /// The device classes (`uart`, `usb`, `video`, `gpio`): the host's nodes of those kinds.
    Devices,
    /// Every capability `privileged` can name: only where the host is disposable (the VM).
    Capabilities,
}

impl Widen {
    pub fn parse(s: &str) -> Option<Widen> {
        match s {
            "maps" => Some(Widen::Maps),
            "devices" => Some(Widen::Devices),
            "capabilities" => Some(Widen::Capabilities),
            _ => None,
        }
    }
}

/// The config keys a widening adds.
pub fn edits(widen: &[Widen]) -> Vec<Edit> {
    let mut out = Vec::new();
    if widen.contains(&Widen::Maps) {
        out.extend(
            super::edit::mappable_folders()
                // `/config` is left as the image has it: images ship one, and add-ons make it
                // the link to `/homeassistant` at start (ssh), which a folder mounted there
                // would turn into a link inside it. A write there is recorded all the same.
                .filter(|f| !matches!(f, MapType::Config | MapType::AppConfig))
                .map(|folder| Edit::Map {
                    folder,
                    read_only: false,
                }),
        );
    }
    if widen.contains(&Widen::Devices) {
        out.extend(
            ["uart", "usb", "video", "gpio"]
                .into_iter()
                .map(|name| Edit::Flag { name }),
        );
    }
    if widen.contains(&Widen::Capabilities) {
        out.extend(
            Capability::ALL
                .into_iter()
                .map(|capability| Edit::Privileged { capability }),
        );
    }
    out
}

/// The container's plan while learning: `config` with the widening's keys added, planned with
/// `options` plus a grant of every right the widening made the policy withhold, and with
/// [`Widen::Capabilities`] of every withheld capability (so that the use of one the config
/// asks for is seen, and reported as the operator grant it needs). Other rights the config asks
/// for and the policy withholds stay withheld.
pub fn learning_plan(
    config: &AddonConfig,
    ships_profile: bool,
    options: &PlanOptions,
    widen: &[Widen],
) -> Result<SandboxPlan, PolicyError> {
    let own = policy::decide(config, ships_profile, options)?;
    let wide = edits(widen)
        .iter()
        .filter(|e| !e.present_in(config))
        .fold(config.clone(), |c, e| e.apply(&c));
    let first = policy::decide(&wide, ships_profile, options)?;
    let mut options = options.clone();
    options.grants.extend(
        first
            .withheld
            .iter()
            .filter_map(|w| Right::parse(&w.right).ok().map(|r| (w, r)))
            .filter(|(w, r)| {
                !own.withheld.iter().any(|o| o.right == w.right)
                    || (matches!(r, Right::Cap(_)) && widen.contains(&Widen::Capabilities))
            })
            .map(|(_, r)| r),
    );
    policy::decide(&wide, ships_profile, &options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widenings_read_as_config_keys() {
        let maps: Vec<String> = edits(&[Widen::Maps]).iter().map(Edit::key).collect();
        assert!(maps.contains(&"map: share:rw".to_owned()));
        assert!(!maps.iter().any(|k| k.starts_with("map: data")));
        assert!(
            !maps.iter().any(|k| k.starts_with("map: addons")),
            "legacy names left out"
        );
        assert!(
            !maps
                .iter()
                .any(|k| k.starts_with("map: config") || k.starts_with("map: app_config")),
            "nothing mounted over the image's /config: {maps:?}"
        );
        assert!(maps.contains(&"map: homeassistant_config:rw".to_owned()));
        assert_eq!(edits(&[Widen::Devices]).len(), 4);
        assert_eq!(edits(&[Widen::Capabilities]).len(), Capability::ALL.len());
        assert_eq!(Widen::parse("maps"), Some(Widen::Maps));
        assert_eq!(Widen::parse("everything"), None);
    }
}
