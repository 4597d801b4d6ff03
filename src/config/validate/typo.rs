//! The "did you mean" hint for an unknown key: the known key nearest to a typo, so that a
//! setting the Supervisor would drop silently (`device-tree`) is named with its right spelling.

use super::KNOWN_KEYS;

/// The known key nearest to a typo, if one is close (Levenshtein distance on a normalised form).
pub(super) fn closest_key(key: &str) -> Option<&'static str> {
    fn norm(s: &str) -> String {
        s.to_lowercase().replace(['-', ' '], "_")
    }
    /// Each known key with its two compared spellings, made once.
    static KNOWN: std::sync::LazyLock<Vec<(&'static str, String, String)>> =
        std::sync::LazyLock::new(|| {
            KNOWN_KEYS
                .iter()
                .map(|c| (*c, norm(c), c.replace('_', "")))
                .collect()
        });
    let k = norm(key);
    let k_bare = k.replace('_', "");
    let (k_len, bare_len) = (k.chars().count(), k_bare.chars().count());
    KNOWN
        .iter()
        .filter_map(|(c, c_norm, c_bare)| {
            let limit = 2.max(c.len() / 5);
            // The distance is at least the difference in length: most keys need no table.
            if k_len.abs_diff(c_norm.len()) > limit && bare_len.abs_diff(c_bare.len()) > limit {
                return None;
            }
            let d = levenshtein(&k, c_norm).min(levenshtein(&k_bare, c_bare));
            (d <= limit).then_some((d, *c))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    // Two rows, reused: this runs for every unknown key against every known one.
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typo_suggestions() {
        assert_eq!(closest_key("device-tree"), Some("devicetree"));
        assert_eq!(closest_key("host_netwrok"), Some("host_network"));
        assert_eq!(closest_key("Privileged"), Some("privileged"));
        assert_eq!(closest_key("maintainer"), None);
    }
}
