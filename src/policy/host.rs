//! The rights that reach the host itself: its namespaces (network, PID, IPC, UTS), its
//! Docker engine, its D-Bus, its kernel modules and its journal. Strict protection withholds
//! each unless granted (the journal, read-only, excepted); the supervisor policy gives what the
//! Supervisor gives, minus what its own protection mode withholds.

use crate::plan::MountKind;

use super::{Decision, Right};

/// Which of the host's namespaces the container shares.
pub(super) struct Namespaces {
    pub network: bool,
    pub pid: bool,
    pub uts: bool,
    pub ipc: bool,
}

impl Namespaces {
    pub fn network_mode(&self) -> String {
        if self.network { "host" } else { "default" }.into()
    }

    pub fn pid_mode(&self) -> Option<String> {
        self.pid.then(|| "host".into())
    }

    pub fn uts_mode(&self) -> Option<String> {
        self.uts.then(|| "host".into())
    }

    /// Strict mode always names the IPC mode; the Supervisor leaves Docker's default.
    pub fn ipc_mode(&self, strict: bool) -> Option<String> {
        if strict {
            Some(if self.ipc { "host" } else { "private" }.into())
        } else {
            None
        }
    }
}

impl Decision<'_> {
    pub(super) fn kernel_modules(&mut self) {
        if !self.config.kernel_modules {
            return;
        }
        let ok = if self.strict() {
            self.allow(
                Right::KernelModules,
                "loading kernel modules changes the host kernel",
            )
        } else {
            self.grant("kernel_modules");
            true
        };
        if ok {
            self.mount(
                "/lib/modules".into(),
                "/lib/modules",
                true,
                "kernel_modules: true",
            );
        }
    }

    pub(super) fn docker_api(&mut self) {
        if !self.config.docker_api {
            return;
        }
        let ok = if self.strict() {
            self.allow(
                Right::DockerApi,
                "the Docker socket gives full control of the host",
            )
        } else {
            self.allow_unprotected(
                Right::DockerApi,
                "protection mode does not mount the Docker socket",
            )
        };
        if ok {
            self.mount_kind(
                "/run/docker.sock".into(),
                "/run/docker.sock",
                MountKind::Socket,
                true,
                "docker_api: true",
            );
        }
    }

    pub(super) fn host_dbus(&mut self) {
        if !self.config.host_dbus {
            return;
        }
        let ok = if self.strict() {
            self.allow(Right::HostDbus, "the host's D-Bus controls host services")
        } else {
            self.grant("host_dbus");
            true
        };
        if ok {
            self.mount_kind(
                "/run/dbus".into(),
                "/run/dbus",
                MountKind::SocketDirectory,
                true,
                "host_dbus: true",
            );
        }
    }

    pub(super) fn journald(&mut self) {
        if self.config.journald {
            self.grant("journald");
            for path in ["/var/log/journal", "/run/log/journal"] {
                self.mount(path.into(), path, true, "journald: true");
            }
        }
    }

    /// The host namespaces the config asks for, each granted or withheld.
    pub(super) fn namespaces(&mut self) -> Namespaces {
        let config = self.config;
        let strict = self.strict();
        let host_network = config.host_network
            && (!strict
                || self.allow(
                    Right::HostNetwork,
                    "protection mode isolates the network; declared ports are published instead",
                ));
        let host_pid = config.host_pid
            && if strict {
                self.allow(
                    Right::HostPid,
                    "the host's processes are visible and can be signalled",
                )
            } else {
                self.allow_unprotected(
                    Right::HostPid,
                    "protection mode keeps a private PID namespace",
                )
            };
        let host_uts = config.host_uts
            && (!strict || self.allow(Right::HostUts, "the host's hostname could be changed"));
        let host_ipc = config.host_ipc
            && (!strict
                || self.allow(
                    Right::HostIpc,
                    "the host's shared memory and semaphores are reachable",
                ));
        if !strict {
            for (flag, name) in [
                (host_network, "host_network"),
                (host_uts, "host_uts"),
                (host_ipc, "host_ipc"),
            ] {
                if flag {
                    self.granted.push(name.into());
                }
            }
        }
        Namespaces {
            network: host_network,
            pid: host_pid,
            uts: host_uts,
            ipc: host_ipc,
        }
    }
}
