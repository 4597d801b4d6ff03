//! Access to the Supervisor and Home Assistant APIs: the `hassio_role` the add-on's token
//! carries (strict protection lowers `admin` to `manager` unless granted, since the admin role
//! can switch protection off) and the APIs it may call, which the gateway enforces.

use crate::config::Role;

use super::{Decision, Right};

impl Decision<'_> {
    /// The role the add-on's token carries, and the APIs it may call, recorded as granted.
    pub(super) fn api_access(&mut self) -> Role {
        let config = self.config;
        let mut effective_role = config.hassio_role;
        if config.hassio_role == Role::Admin
            && self.strict()
            && !self.allow(
                Right::AdminRole,
                "the admin role can switch off protection mode",
            )
        {
            effective_role = Role::Manager;
        }
        if config.hassio_api {
            self.granted
                .push(["hassio_api:", effective_role.name()].concat());
        }
        if config.homeassistant_api {
            self.granted.push("homeassistant_api".into());
        }
        if config.auth_api {
            self.granted.push("auth_api".into());
        }
        effective_role
    }
}
