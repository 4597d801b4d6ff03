//! addon-sandbox: decide what a Home Assistant add-on may do, and run it with nothing more.
//!
//! The pipeline is pure up to the plan: [`addon::load`] reads a folder into a validated
//! [`config::AddonConfig`] and diagnostics, [`policy::decide`] turns it into a
//! [`plan::SandboxPlan`], and every later stage translates that plan.

pub mod addon;
pub mod config;
pub mod diag;
pub mod plan;
pub mod policy;
pub mod rating;
pub mod report;
pub mod source;
