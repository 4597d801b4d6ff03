//! The gateway's access decisions against the Supervisor's own regexes.
//!
//! The oracle is the verbatim pattern text of `supervisor/api/middleware/security.py` (as
//! `../shared/reference/supervisor.md` quotes it), run by fancy-regex, which has the
//! lookaheads the gateway had to translate away. Paths are generated from those same
//! patterns (each alternative expanded with fragments chosen to hit the lookaheads, slugs,
//! `/info` endings and version prefixes) and then crossed and case-flipped, so the decisions
//! near every boundary of every table are compared.

use std::sync::Arc;

use addon_sandbox::config::Role;
use addon_sandbox::gateway::callers::AddonCaller;
use addon_sandbox::gateway::{Caller, Decision, Gateway, GatewayConfig, Presented};
use fancy_regex::Regex;

const SLUG: &str = "[-_.A-Za-z0-9]+";

fn v1(body: &str) -> String {
    format!("^(?:{body})$")
}
fn v2(body: &str) -> String {
    format!("^/v2(?:{body})$")
}

/// The Supervisor's pattern bodies, verbatim but for `RE_SLUG` substituted.
struct Oracle {
    blacklist: Regex,
    v1: Version,
    v2: Version,
}

struct Version {
    api_bypass: Regex,
    core_only: Regex,
    no_security_check: Regex,
    roles: [Regex; 5],
}

fn pieces() -> Vec<(bool, &'static str, String)> {
    let s = |p: &str| p.replace("SLUG", SLUG);
    let v1_manager = s(
        r"|/.+/info|/addons(?:/SLUG/(?!security).+|/reload)?|/audio/.+|/auth/cache|/available_updates|/backups.*|/cli/.+|/core/.+|/dns/.+|/docker/.+|/jobs/.+|/hardware/.+|/homeassistant/.+|/host/.+|/mounts.*|/multicast/.+|/network/.+|/observer/.+|/os/(?!datadisk/wipe).+|/refresh_updates|/resolution/.+|/security/.+|/snapshots.*|/store.*|/supervisor/.+",
    );
    let v2_manager = s(
        r"|/.+/info|/apps(?:/SLUG/(?!security).+)?|/audio/.+|/auth/cache|/backups.*|/cli/.+|/core/.+|/dns/.+|/docker/.+|/jobs/.+|/hardware/.+|/homeassistant/.+|/host/.+|/mounts.*|/multicast/.+|/network/.+|/observer/.+|/os/(?!datadisk/wipe).+|/reload_updates|/resolution/.+|/security/.+|/store.*|/supervisor/.+",
    );
    vec![
        (
            false,
            "api_bypass",
            s(
                r"|/addons/self/(?!security|update)[^/]+|/addons/self/options/config|/info|/services.*|/discovery.*|/auth",
            ),
        ),
        (false, "core_only", s("/addons/SLUG/sys_options")),
        (
            false,
            "no_security_check",
            s(
                r"|/homeassistant/api/.*|/homeassistant/websocket|/core/api/.*|/core/websocket|/supervisor/ping|/ingress/[-_A-Za-z0-9]+/.*|/app/.*\.(?:js|gz|json|map|woff2)|/(store/)?addons/SLUG/(logo|icon)",
            ),
        ),
        (false, "default", s(r"|/.+/info")),
        (
            false,
            "homeassistant",
            s(r"|/.+/info|/core/.+|/homeassistant/.+"),
        ),
        (false, "backup", s(r"|/.+/info|/backups.*")),
        (false, "manager", v1_manager),
        (false, "admin", s(".*")),
        (
            true,
            "api_bypass",
            s(
                r"|/apps/self/(?!security|update)[^/]+|/apps/self/options/config|/info|/services.*|/discovery.*|/auth",
            ),
        ),
        (true, "core_only", s("/apps/SLUG/sys_options")),
        (
            true,
            "no_security_check",
            s(r"|/ingress/[-_A-Za-z0-9]+/.*|/store/apps/SLUG/(logo|icon)"),
        ),
        (true, "default", s(r"|/.+/info")),
        (
            true,
            "homeassistant",
            s(r"|/.+/info|/core/.+|/homeassistant/.+"),
        ),
        (true, "backup", s(r"|/.+/info|/backups.*")),
        (true, "manager", v2_manager),
        (true, "admin", s(".*")),
    ]
}

impl Oracle {
    fn new() -> Oracle {
        let all = pieces();
        let version = |is_v2: bool| {
            let get = |name: &str| {
                let body = &all
                    .iter()
                    .find(|(v, n, _)| *v == is_v2 && *n == name)
                    .unwrap()
                    .2;
                let full = if is_v2 { v2(body) } else { v1(body) };
                Regex::new(&full).unwrap()
            };
            Version {
                api_bypass: get("api_bypass"),
                core_only: get("core_only"),
                no_security_check: get("no_security_check"),
                roles: ["default", "homeassistant", "backup", "manager", "admin"].map(get),
            }
        };
        Oracle {
            blacklist: Regex::new(
                r"^(?:/v2)?(?:|/homeassistant/api/hassio(?:/|_).*|/core/api/hassio(?:/|_).*)$",
            )
            .unwrap(),
            v1: version(false),
            v2: version(true),
        }
    }

    fn version(&self, path: &str) -> &Version {
        if path == "/v2" || path.starts_with("/v2/") {
            &self.v2
        } else {
            &self.v1
        }
    }
}

/// What the Supervisor decides for an add-on's token on `path`.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Clone, Copy)]
enum Expect {
    Allow,
    Deny,
    /// Not checked by the token middleware at all.
    Unchecked,
}

fn supervisor(oracle: &Oracle, path: &str, role: Role, hassio_api: bool) -> Expect {
    let m = |r: &Regex| r.is_match(path).unwrap();
    if m(&oracle.blacklist) {
        return Expect::Deny;
    }
    let v = oracle.version(path);
    if m(&v.no_security_check) {
        return Expect::Unchecked;
    }
    if m(&v.core_only) {
        return Expect::Deny;
    }
    if m(&v.api_bypass) || (hassio_api && m(&v.roles[role as usize])) {
        return Expect::Allow;
    }
    Expect::Deny
}

// ---- generating paths from the pattern text ----

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Fragments for `.`-runs: what the lookaheads, slugs and suffixes care about.
const FRAGMENTS: &[&str] = &[
    "",
    "x",
    "info",
    "/info",
    "info/",
    "security",
    "securityx",
    "/security",
    "update",
    "updates",
    "self",
    "other",
    "core_ssh",
    "a.b",
    "-",
    "_",
    "/",
    "a/b",
    "datadisk/wipe",
    "datadisk/wipex",
    "datadisk",
    "sys_options",
    "options/config",
    "options",
    "logs",
    "SeCuRiTy",
    "Info",
    "v2",
    "addons",
    "apps",
    "api/hassio",
    "api/hassio_x",
    "hassio",
    "new/full",
    "reload",
    "logo",
    "icon",
    "x.js",
    "x.map",
    "cache",
    "ping",
    "websocket",
];

#[derive(Debug, Clone)]
enum Node {
    Lit(char),
    Any,
    Class(Vec<(char, char)>, bool),
    Group(Vec<Vec<Node>>),
    Ahead,
    Repeat(Box<Node>, usize),
}

fn parse_alternation(chars: &[char], i: &mut usize) -> Vec<Vec<Node>> {
    let mut alts = vec![Vec::new()];
    while *i < chars.len() {
        let c = chars[*i];
        *i += 1;
        let node = match c {
            ')' => return alts,
            '|' => {
                alts.push(Vec::new());
                continue;
            }
            '^' | '$' => continue,
            '\\' => {
                *i += 1;
                Node::Lit(chars[*i - 1])
            }
            '.' => Node::Any,
            '[' => {
                let negated = chars[*i] == '^';
                if negated {
                    *i += 1;
                }
                let mut ranges = Vec::new();
                while chars[*i] != ']' {
                    let a = chars[*i];
                    if chars[*i + 1] == '-' && chars[*i + 2] != ']' {
                        ranges.push((a, chars[*i + 2]));
                        *i += 3;
                    } else {
                        ranges.push((a, a));
                        *i += 1;
                    }
                }
                *i += 1;
                Node::Class(ranges, negated)
            }
            '(' => {
                let ahead = chars[*i] == '?' && chars[*i + 1] == '!';
                if chars[*i] == '?' {
                    *i += 2;
                }
                let inner = parse_alternation(chars, i);
                if ahead {
                    Node::Ahead
                } else {
                    Node::Group(inner)
                }
            }
            '*' | '+' | '?' => {
                let last = alts.last_mut().unwrap().pop().unwrap();
                let min = usize::from(c == '+');
                alts.last_mut().unwrap().push(Node::Repeat(
                    Box::new(last),
                    min + 10 * usize::from(c == '?'),
                ));
                continue;
            }
            c => Node::Lit(c),
        };
        alts.last_mut().unwrap().push(node);
    }
    alts
}

fn sample(node: &Node, rng: &mut Rng, out: &mut String) {
    match node {
        Node::Lit(c) => out.push(*c),
        Node::Any => {
            let fragment: &&str = rng.pick(FRAGMENTS);
            out.push_str(fragment)
        }
        Node::Class(ranges, negated) => {
            if *negated {
                let segment: &&str = rng.pick(&["x", "security", "update", "info", "s", "updatex"]);
                out.push_str(segment);
            } else {
                let (a, b) = *rng.pick(ranges);
                let span = (b as u32 - a as u32 + 1) as usize;
                out.push(char::from_u32(a as u32 + rng.below(span) as u32).unwrap());
            }
        }
        Node::Group(alts) => {
            for n in rng.pick(alts).clone() {
                sample(&n, rng, out);
            }
        }
        Node::Ahead => {}
        Node::Repeat(inner, kind) => {
            // kind: 0 = *, 1 = +, 10 = ?
            let count = match kind {
                10 => rng.below(2),
                k => k + rng.below(3),
            };
            // Classes repeated make slugs and segments; a `.` run is already a fragment.
            if matches!(**inner, Node::Any) {
                if count > 0 || rng.below(3) == 0 {
                    sample(inner, rng, out);
                }
            } else {
                for _ in 0..count.max(usize::from(*kind == 1)) {
                    sample(inner, rng, out);
                }
            }
        }
    }
}

fn generate(count: usize) -> Vec<String> {
    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    let mut alternatives = Vec::new();
    for (is_v2, _, body) in pieces() {
        let chars: Vec<char> = body.chars().collect();
        let mut i = 0;
        for alt in parse_alternation(&chars, &mut i) {
            alternatives.push((is_v2, alt));
        }
    }
    let mut paths = Vec::with_capacity(count);
    while paths.len() < count {
        let (is_v2, alt) = rng.pick(&alternatives).clone();
        let mut p = String::from(if is_v2 { "/v2" } else { "" });
        for n in &alt {
            sample(n, &mut rng, &mut p);
        }
        match rng.below(6) {
            // Cross with another generated path: a prefix of this, the tail of that.
            0 if !paths.is_empty() => {
                let other: &String = rng.pick(&paths);
                let cut = p
                    .char_indices()
                    .map(|(i, _)| i)
                    .nth(rng.below(p.len().max(1)))
                    .unwrap_or(0);
                let ocut = other
                    .char_indices()
                    .map(|(i, _)| i)
                    .nth(rng.below(other.len().max(1)))
                    .unwrap_or(0);
                p = format!("{}{}", &p[..cut], &other[ocut..]);
            }
            // Flip the case of one letter.
            1 => {
                let letters: Vec<usize> = p
                    .char_indices()
                    .filter(|(_, c)| c.is_ascii_lowercase())
                    .map(|(i, _)| i)
                    .collect();
                if !letters.is_empty() {
                    let at = *rng.pick(&letters);
                    p.replace_range(at..at + 1, &p[at..at + 1].to_ascii_uppercase());
                }
            }
            _ => {}
        }
        // The gateway decides on canonical paths: no empty or dot segments.
        let canonical = canonical(&p);
        if !canonical.is_empty() {
            paths.push(canonical);
        }
    }
    paths
}

fn canonical(p: &str) -> String {
    let segments: Vec<&str> = p
        .split('/')
        .filter(|s| !s.is_empty() && *s != "." && *s != "..")
        .collect();
    let mut out = String::new();
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if p.ends_with('/') && !out.is_empty() {
        out.push('/');
    }
    if out.is_empty() { "/".into() } else { out }
}

fn gateway() -> (Gateway, tempfile::TempDir) {
    let state = tempfile::tempdir().unwrap();
    let gw = Gateway::new(GatewayConfig::new(
        "http://127.0.0.1:9",
        state.path().to_path_buf(),
    ))
    .unwrap();
    (gw, state)
}

fn addon(role: Role, hassio_api: bool) -> Arc<AddonCaller> {
    Arc::new(AddonCaller {
        full_slug: "local_probe".into(),
        role,
        hassio_api,
        homeassistant_api: false,
        auth_api: true,
        strict: false,
        ingress_token: None,
        ingress_address: None,
        info: None,
    })
}

#[test]
fn every_generated_path_is_decided_as_the_supervisors_regexes_decide_it() {
    let oracle = Oracle::new();
    let (gw, _state) = gateway();
    let paths = generate(6000);
    let distinct: std::collections::BTreeSet<&String> = paths.iter().collect();
    assert!(
        distinct.len() > 3000,
        "the generator repeats itself: {}",
        distinct.len()
    );

    let mut seen = std::collections::BTreeMap::<(&str, Expect), usize>::new();
    let mut mismatches = Vec::new();
    for role in Role::ALL {
        for hassio_api in [true, false] {
            let caller = addon(role, hassio_api);
            for path in &paths {
                let lower = path.to_ascii_lowercase();
                let theirs = supervisor(&oracle, path, role, hassio_api);
                let theirs_lower = supervisor(&oracle, &lower, role, hassio_api);
                // Deliberate difference: a path is allowed only when its lowercase spelling
                // is allowed too (an upstream that ignores case must not see a way around).
                let expected = match (theirs, theirs_lower) {
                    (Expect::Allow, Expect::Deny) => Expect::Deny,
                    (e, _) => e,
                };
                let ours = gw.decide(path, Presented::Known(Caller::Addon(caller.clone())));
                let got = match &ours {
                    Decision::Forward(_) | Decision::Auth(_) => Expect::Allow,
                    Decision::Open | Decision::CoreProxy => Expect::Unchecked,
                    // Ingress is routed before decide; a non-literal ingress spelling is 400.
                    Decision::Deny(s, _) if s.as_u16() == 400 => Expect::Unchecked,
                    Decision::Deny(..) => Expect::Deny,
                };
                *seen.entry((role.name(), expected)).or_default() += 1;
                if got != expected {
                    mismatches.push(format!("{role:?} hassio_api={hassio_api} {path}: supervisor {expected:?}, gateway {ours:?}"));
                }
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches, first: {:#?}",
        mismatches.len(),
        &mismatches[..mismatches.len().min(20)]
    );
    // Each role sees both outcomes many times: the comparison is not one-sided.
    for role in Role::ALL {
        for e in [Expect::Allow, Expect::Deny] {
            let n = seen.get(&(role.name(), e)).copied().unwrap_or(0);
            assert!(n > 200, "{role:?} {e:?} only {n} times");
        }
    }
}

#[test]
fn the_decisions_that_matter_most_by_name() {
    let (gw, _state) = gateway();
    let decide = |role, hassio_api, path: &str| {
        matches!(
            gw.decide(
                path,
                Presented::Known(Caller::Addon(addon(role, hassio_api)))
            ),
            Decision::Forward(_) | Decision::Auth(_)
        )
    };
    for role in Role::ALL {
        let admin = role == Role::Admin;
        for path in [
            "/addons/core_ssh/security",
            "/v2/apps/core_ssh/security",
            "/os/datadisk/wipe",
            "/auth/list",
            "/auth/reset",
        ] {
            assert_eq!(decide(role, true, path), admin, "{role:?} {path}");
        }
        assert!(
            !decide(role, true, "/addons/core_ssh/sys_options"),
            "core only"
        );
        assert!(
            decide(role, false, "/addons/self/options"),
            "bypass without hassio_api"
        );
        assert!(!decide(role, false, "/addons/self/update"));
        assert!(!decide(role, false, "/host/info"), "roles need hassio_api");
    }
    assert!(matches!(gw.decide("/auth", Presented::Missing), Decision::Deny(s, _) if s == 401));
    assert!(
        matches!(gw.decide("/host/info", Presented::Unknown), Decision::Deny(s, _) if s == 403)
    );
    assert_eq!(
        gw.decide("/supervisor/ping", Presented::Missing),
        Decision::Open
    );
    assert_eq!(
        gw.decide("/core/api/states", Presented::Missing),
        Decision::CoreProxy
    );
    assert!(
        matches!(gw.decide("/core/api/hassio_auth", Presented::Known(Caller::HomeAssistant)), Decision::Deny(s, _) if s == 403)
    );

    // Strict mode: an admin add-on may not switch off its own protection, by either name.
    let strict_admin = Arc::new(AddonCaller {
        strict: true,
        ..(*addon(Role::Admin, true)).clone()
    });
    for path in [
        "/addons/self/security",
        "/addons/local_probe/security",
        "/v2/apps/self/security",
    ] {
        assert!(
            matches!(gw.decide(path, Presented::Known(Caller::Addon(strict_admin.clone()))), Decision::Deny(s, _) if s == 403),
            "{path}"
        );
    }
    assert!(matches!(
        gw.decide(
            "/addons/other/security",
            Presented::Known(Caller::Addon(strict_admin))
        ),
        Decision::Forward(_)
    ));
}

/// A sample of the same generated paths through the whole stack: real HTTP to a running
/// gateway, a real upstream that records what reached it. Allowed means forwarded in its
/// canonical spelling; denied means 403 and nothing upstream.
#[test]
fn a_sample_of_generated_paths_through_real_http() {
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let oracle = Oracle::new();
    let paths: Vec<String> = generate(6000).into_iter().step_by(15).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // The upstream: 200 and the target it saw.
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream_addr = upstream.local_addr().unwrap();
        let record = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = upstream.accept().await else { continue };
                let record = record.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        record.lock().unwrap().push(req.uri().to_string());
                        async { Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Empty::<bytes::Bytes>::new())) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let state_dir = tempfile::tempdir().unwrap();
        let state = addon_sandbox::launch::state::StateDir::open(state_dir.path()).unwrap();
        for role in Role::ALL {
            let slug = format!("local_{}", role.name());
            state.write_token(&slug, &format!("token-{}", role.name())).unwrap();
            state
                .write_record(&addon_sandbox::launch::state::Record {
                    full_slug: slug.clone(),
                    container_name: slug.clone(),
                    container_id: "0".into(),
                    image: "i".into(),
                    confinement: "unconfined".into(),
                    role: role.name().into(),
                    hassio_api: true,
                    homeassistant_api: false,
                    auth_api: false,
                    ingress_port: None,
                    // The Supervisor's policy: admin may reach its own security endpoint, as
                    // the regexes say.
                    policy: "supervisor".into(),
                    ingress_token: None,
                    ingress_address: None,
                    info: None,
                })
                .unwrap();
        }
        let gateway = Gateway::new(GatewayConfig::new(format!("http://{upstream_addr}"), state_dir.path().to_path_buf()))
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(Arc::new(gateway).serve(listener, std::future::pending()));

        let mut compared = std::collections::BTreeMap::<(&str, u16), usize>::new();
        for role in Role::ALL {
            for path in &paths {
                if matches!(path.as_str(), "/auth" | "/v2/auth") {
                    continue; // answered by the gateway itself, never forwarded
                }
                let lower = path.to_ascii_lowercase();
                let expected = match (
                    supervisor(&oracle, path, role, true),
                    supervisor(&oracle, &lower, role, true),
                ) {
                    (Expect::Unchecked, _) => continue,
                    (Expect::Allow, Expect::Deny) => Expect::Deny,
                    (e, _) => e,
                };
                let wire = addon_sandbox::gateway::path::encode(path);
                seen.lock().unwrap().clear();
                let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                let request = format!(
                    "GET {wire} HTTP/1.1\r\nHost: s\r\nX-Supervisor-Token: token-{}\r\nConnection: close\r\n\r\n",
                    role.name()
                );
                stream.write_all(request.as_bytes()).await.unwrap();
                let mut answer = String::new();
                stream.read_to_string(&mut answer).await.unwrap();
                let status: u16 = answer[9..12].parse().unwrap();
                let reached = seen.lock().unwrap().clone();
                // A segment the gateway refuses as ambiguous (a slug ending in a dot) is 400
                // whatever the role, and nothing goes up.
                let refused = addon_sandbox::gateway::path::normalise(&wire).is_err();
                match expected {
                    _ if refused => {
                        assert_eq!(status, 400, "{role:?} {path}: {answer}");
                        assert!(reached.is_empty(), "{role:?} {path} reached {reached:?}");
                    }
                    Expect::Allow => {
                        assert_eq!(status, 200, "{role:?} {path}: {answer}");
                        assert_eq!(reached.as_slice(), std::slice::from_ref(&wire), "{role:?} {path}");
                    }
                    _ => {
                        assert_eq!(status, 403, "{role:?} {path}: {answer}");
                        assert!(reached.is_empty(), "{role:?} {path} reached {reached:?}");
                    }
                }
                *compared.entry((role.name(), status)).or_default() += 1;
            }
        }
        for role in Role::ALL {
            for status in [200, 403] {
                let n = compared.get(&(role.name(), status)).copied().unwrap_or(0);
                assert!(n > 10, "{role:?} {status}: only {n}");
            }
        }
    });
}
