//! Image signing: a prebuilt `image` whose build file names no signing identity.
//!
//! Home Assistant's builder signs images with cosign (keyless, from CI) and reads who signs
//! from the build file's `cosign: {identity: ...}`. The Supervisor no longer verifies
//! signatures (its `signed` is always false, and Codenotary is gone), so the rating does not
//! move; a user who verifies images needs the identity.

use crate::addon::BUILD_NAMES;

use super::rules::IMAGE_UNSIGNED;
use super::{Ctx, advice};

pub(super) fn check(ctx: &mut Ctx) {
    let Some(image) = ctx.config.image.clone() else {
        return;
    };
    let Some((key, _)) = ctx.entry("image") else {
        return;
    };
    if ctx.addon.declared.cosign_identity.is_some() {
        return;
    }
    let build = BUILD_NAMES
        .iter()
        .map(|n| ctx.addon.dir.join(n))
        .find(|p| p.is_file());
    let legacy = build
        .as_deref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .is_some_and(|t| t.contains("codenotary"));
    let why = if legacy {
        "its build file names only a Codenotary signer, which nothing checks any more"
    } else {
        "its build file names no signing identity"
    };
    ctx.fix_unchanged(
        &IMAGE_UNSIGNED,
        key.pos,
        format!("image {image} is pulled prebuilt, but {why}"),
        advice(
            "sign the image in CI with cosign and name the signer in build.yaml: `cosign:` with `identity: https://github.com/OWNER/REPO/.*`",
        ),
    );
}
