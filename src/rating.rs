//! The Supervisor's security rating (`supervisor/apps/utils.py::rating_security`), 1 to 8,
//! with the factors that moved it. The factors add up: `BASE + Σ delta == rating`.

use serde::Serialize;

use crate::config::{AddonConfig, Role};

pub const BASE: i32 = 5;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Factor {
    pub reason: String,
    pub delta: i32,
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

pub fn rate(config: &AddonConfig, apparmor: ApparmorMode) -> Rating {
    let mut rating = BASE;
    let mut factors = Vec::new();
    let mut add = |rating: &mut i32, delta: i32, reason: String| {
        *rating += delta;
        factors.push(Factor { reason, delta });
    };

    match apparmor {
        ApparmorMode::Disable => add(
            &mut rating,
            -1,
            "apparmor: false (runs without an AppArmor profile)".into(),
        ),
        ApparmorMode::Profile => add(
            &mut rating,
            1,
            "ships its own AppArmor profile (apparmor.txt)".into(),
        ),
        ApparmorMode::Default => {}
    }
    if config.ingress {
        add(
            &mut rating,
            2,
            "ingress: true (web UI behind Home Assistant's authentication)".into(),
        );
    } else if config.auth_api {
        add(
            &mut rating,
            1,
            "auth_api: true (authenticates users against Home Assistant)".into(),
        );
    }
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
        add(
            &mut rating,
            -1,
            format!("high-risk privileges: {}", what.join(", ")),
        );
    }
    match config.hassio_role {
        Role::Manager => add(&mut rating, -1, "hassio_role: manager".into()),
        Role::Admin => add(
            &mut rating,
            -2,
            "hassio_role: admin (can switch off protection mode)".into(),
        ),
        _ => {}
    }
    if config.host_network {
        add(&mut rating, -1, "host_network: true".into());
    }
    if config.host_pid {
        add(&mut rating, -2, "host_pid: true".into());
    }
    if config.host_uts
        && config
            .privileged
            .contains(&crate::config::Capability::SysAdmin)
    {
        add(
            &mut rating,
            -1,
            "host_uts: true together with SYS_ADMIN".into(),
        );
    }
    if config.docker_api || config.full_access {
        let what = match (config.docker_api, config.full_access) {
            (true, true) => "docker_api and full_access",
            (true, false) => "docker_api (control of the host's Docker engine)",
            _ => "full_access (every host device)",
        };
        let delta = 1 - rating;
        add(
            &mut rating,
            delta,
            format!("{what}: the rating is 1 whatever else is set"),
        );
    }
    let clamped = rating.clamp(1, 8);
    if clamped != rating {
        let delta = clamped - rating;
        add(&mut rating, delta, "limited to the 1-8 scale".into());
    }
    Rating {
        rating: rating as u8,
        factors,
    }
}
