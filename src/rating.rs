//! The Supervisor's security rating (`supervisor/apps/utils.py::rating_security`), 1 to 8,
//! with the factors that moved it. The factors add up: `BASE + Σ delta == rating`.

use serde::Serialize;

use crate::config::{AddonConfig, Role};

pub const BASE: i32 = 5;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Factor {
    pub reason: String,
    /// What it added; the deltas always sum to the rating.
    pub delta: i32,
    /// The value the factor set the rating to, whatever came before (docker_api, full_access,
    /// the 1-8 limits); its delta is only what that took, not a bonus or a penalty of its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sets: Option<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rating {
    pub rating: u8,
    pub factors: Vec<Factor>,
}

/// What the Supervisor calls `AppModel.apparmor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApparmorMode {
    /// `apparmor: false` in the config.
    Disable,
    /// The add-on ships an installable `apparmor.txt`.
    Profile,
    /// Docker's default profile.
    Default,
}

impl ApparmorMode {
    pub fn of(config: &AddonConfig, ships_profile: bool) -> ApparmorMode {
        if !config.apparmor {
            ApparmorMode::Disable
        } else if ships_profile {
            ApparmorMode::Profile
        } else {
            ApparmorMode::Default
        }
    }
}

/// The running total and the factors that moved it.
struct Tally {
    rating: i32,
    factors: Vec<Factor>,
}

impl Tally {
    fn add(&mut self, delta: i32, reason: String) {
        self.rating += delta;
        self.factors.push(Factor {
            reason,
            delta,
            sets: None,
        });
    }

    /// The rating becomes `value` whatever came before.
    fn set(&mut self, value: u8, reason: String) {
        let delta = i32::from(value) - self.rating;
        self.rating = i32::from(value);
        self.factors.push(Factor {
            reason,
            delta,
            sets: Some(value),
        });
    }
}

/// The Supervisor's rating, as it computes it today (`signed` is always false there).
pub fn rate(config: &AddonConfig, apparmor: ApparmorMode) -> Rating {
    rate_signed(config, apparmor, None)
}

/// The rating with the Supervisor's old `+1 if signed` given back for an image verified
/// against a signer the operator's trust policy pins (`signer` names it). Only such a
/// verification counts: never a key the add-on declares about itself (`codenotary`). The
/// factor sits where the Supervisor had it, so `docker_api`/`full_access` still set 1.
pub fn rate_signed(config: &AddonConfig, apparmor: ApparmorMode, signer: Option<&str>) -> Rating {
    let mut tally = Tally {
        rating: BASE,
        factors: Vec::new(),
    };
    match apparmor {
        ApparmorMode::Disable => tally.add(
            -1,
            "apparmor: false (runs without an AppArmor profile)".into(),
        ),
        ApparmorMode::Profile => {
            tally.add(1, "ships its own AppArmor profile (apparmor.txt)".into())
        }
        ApparmorMode::Default => {}
    }
    if config.ingress {
        tally.add(
            2,
            "ingress: true (web UI behind Home Assistant's authentication)".into(),
        );
    } else if config.auth_api {
        tally.add(
            1,
            "auth_api: true (authenticates users against Home Assistant)".into(),
        );
    }
    if let Some(signer) = signer {
        tally.add(
            1,
            format!("image verified: signed by {signer}, a signer the trust policy pins"),
        );
    }
    privileges(&mut tally, config);
    match config.hassio_role {
        Role::Manager => tally.add(-1, "hassio_role: manager".into()),
        Role::Admin => tally.add(
            -2,
            "hassio_role: admin (can switch off protection mode)".into(),
        ),
        _ => {}
    }
    host_access(&mut tally, config);
    let clamped = tally.rating.clamp(1, 8);
    if clamped != tally.rating {
        tally.set(clamped as u8, "limited to the 1-8 scale".into());
    }
    Rating {
        rating: tally.rating as u8,
        factors: tally.factors,
    }
}

/// High-risk capabilities and `kernel_modules`, one factor for all of them.
fn privileges(tally: &mut Tally, config: &AddonConfig) {
    let risky: Vec<&str> = config
        .privileged
        .iter()
        .filter(|c| c.lowers_rating())
        .map(|c| c.name())
        .collect();
    if !risky.is_empty() || config.kernel_modules {
        let mut what: Vec<String> = risky.iter().map(|c| c.to_string()).collect();
        if config.kernel_modules {
            what.push("kernel_modules".into());
        }
        tally.add(-1, format!("high-risk privileges: {}", what.join(", ")));
    }
}

/// The host's namespaces, and the Docker engine or every device, which set the rating to 1.
fn host_access(tally: &mut Tally, config: &AddonConfig) {
    if config.host_network {
        tally.add(-1, "host_network: true".into());
    }
    if config.host_pid {
        tally.add(-2, "host_pid: true".into());
    }
    if config.host_uts
        && config
            .privileged
            .contains(&crate::config::Capability::SysAdmin)
    {
        tally.add(-1, "host_uts: true together with SYS_ADMIN".into());
    }
    if config.docker_api || config.full_access {
        let what = match (config.docker_api, config.full_access) {
            (true, true) => "docker_api and full_access",
            (true, false) => "docker_api (control of the host's Docker engine)",
            _ => "full_access (every host device)",
        };
        tally.set(1, format!("{what}: the rating is 1 whatever else is set"));
    }
}
