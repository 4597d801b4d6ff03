//! Capabilities: the baseline every strict sandbox keeps, and the declared ones (`privileged`,
//! plus `SYS_MODULE` for `kernel_modules` and `SYS_NICE` for `realtime`). Strict protection
//! withholds the high-risk ones unless granted; the supervisor policy adds what is declared.

use crate::config::Capability;

use super::{Decision, Right};

/// Capabilities every strict sandbox keeps: what an s6-overlay image needs to drop to its
/// service users and own its files, and nothing that reaches beyond the container.
pub const BASELINE_CAPS: [&str; 9] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "NET_BIND_SERVICE",
    "SETGID",
    "SETUID",
    "SYS_CHROOT",
];

/// Declared capabilities that strict protection withholds.
pub fn high_risk(cap: Capability) -> bool {
    !matches!(
        cap,
        Capability::IpcLock | Capability::SysNice | Capability::SysResource
    )
}

impl Decision<'_> {
    /// The capabilities the container is given, recorded as granted or withheld.
    pub(super) fn capabilities(&mut self) {
        let config = self.config;
        let mut declared: Vec<Capability> = config.privileged.clone();
        if config.kernel_modules {
            declared.push(Capability::SysModule);
        }
        if config.realtime {
            declared.push(Capability::SysNice);
        }
        declared.sort();
        declared.dedup();
        if self.strict() {
            self.caps
                .extend(BASELINE_CAPS.iter().map(|c| c.to_string()));
            for cap in declared {
                let granted = if cap == Capability::SysModule && config.kernel_modules {
                    // Decided together with the /lib/modules mount.
                    self.granted.iter().any(|g| g == "kernel_modules")
                } else if high_risk(cap) {
                    self.allow(
                        Right::Cap(cap),
                        "a high-risk capability that reaches beyond the container",
                    )
                } else {
                    self.grant(cap.name());
                    true
                };
                if granted {
                    self.caps.insert(cap.name().to_owned());
                }
            }
        } else {
            for cap in declared {
                self.grant(cap.name());
                self.caps.insert(cap.name().to_owned());
            }
        }
    }
}
