//! Reading the proof a container writes about itself (`key: value` or `key=value` lines, as
//! `/proc/self/status` and the proof scripts of tests/launch.rs and tests/kube_podman.rs
//! write them), and the capability mask a plan's `cap_add` should give.

/// The value of `key` in `proof`; a missing key fails the test, naming it.
pub fn field<'a>(proof: &'a str, key: &str) -> &'a str {
    proof
        .lines()
        .find_map(|l| {
            l.strip_prefix(key)
                .and_then(|r| r.strip_prefix(':').or_else(|| r.strip_prefix('=')))
        })
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key} in proof:\n{proof}"))
}

/// The `CapEff` bits of capabilities named as in a plan (`NET_ADMIN`).
pub fn cap_mask<S: AsRef<str>>(caps: impl IntoIterator<Item = S>) -> u64 {
    let all = addon_sandbox::profile::rule::CAPABILITIES;
    caps.into_iter()
        .map(|c| {
            let name = c.as_ref().to_ascii_lowercase();
            1u64 << all.iter().position(|x| *x == name).unwrap()
        })
        .fold(0, |a, b| a | b)
}
