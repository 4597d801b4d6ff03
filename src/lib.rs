//! addon-sandbox: decide what a Home Assistant add-on may do, and run it with nothing more.
//!
//! The pipeline is pure up to the plan: [`addon::load`] reads a folder into a validated
//! [`config::AddonConfig`] and diagnostics, [`policy::decide`] turns it into a
//! [`plan::SandboxPlan`], and every later stage translates that plan.
//!
//! ```
//! use std::path::Path;
//! use addon_sandbox::{config, diag::Sink, policy, source};
//!
//! let yaml = "name: Demo\nversion: 1.0.0\nslug: demo\ndescription: d\narch: [amd64]\n\
//!             host_network: true\nprivileged: [SYS_ADMIN]\nmap: [share:rw]\n";
//! let root = source::parse(yaml, source::Format::Yaml).unwrap();
//! let mut sink = Sink::new(Path::new("config.yaml"), None);
//! let config = config::validate::validate(&root, &mut sink).expect("valid");
//!
//! let plan = policy::decide(&config, false, &policy::PlanOptions::default()).unwrap();
//! assert_eq!(plan.network_mode, "default"); // host network withheld by protection mode
//! assert!(plan.withheld.iter().any(|w| w.right == "SYS_ADMIN"));
//! assert!(plan.mounts.iter().any(|m| m.target == "/share" && !m.read_only));
//! assert_eq!(plan.cap_drop, ["ALL"]);
//! ```

pub mod addon;
pub mod apparmor;
pub mod config;
pub mod diag;
pub mod gateway;
pub mod kube;
pub mod launch;
pub mod learn;
pub mod lint;
pub mod native;
pub mod options;
pub mod parallel;
pub mod plan;
pub mod policy;
pub mod profile;
pub mod rating;
pub mod report;
pub mod source;
pub mod tls;
pub mod trust;
pub mod vm;
