//! `node load-profiles` labels its node through the Kubernetes API, and the pods' node
//! affinity waits for those labels.
//!
//! No kube-apiserver can be had on this machine, so the API server here is a stand-in
//! (`common/apiserver.rs`): a real HTTPS server on 127.0.0.1 with a CA and a certificate made
//! in the test, implementing the one endpoint the loader uses (its own Node, `GET` and merge
//! `PATCH`) with Kubernetes' semantics and answers. The loader is the real binary
//! with the real `apparmor_parser` (`--compile-to` stands for the kernel, as in
//! `tests/kube_node.rs`).

#[path = "common/apiserver.rs"]
mod apiserver;
mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use apiserver::{Cluster, make_ca, make_server_cert, serve};
use common::kube_node::{manifests, mount_configmap};
use k8s_openapi::api::core::v1::NodeSelectorTerm;
use serde_json::{Value, json};

const TOKEN: &str = "loader-token-7f3a";
const NODE: &str = "node-1";
const PREFIX: &str = "profiles.addon-sandbox.io/";

struct Setup {
    tmp: tempfile::TempDir,
    port: u16,
    cluster: Arc<Mutex<Cluster>>,
}

impl Setup {
    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn labels(&self) -> BTreeMap<String, String> {
        let cluster = self.cluster.lock().unwrap();
        serde_json::from_value(cluster.nodes[NODE]["metadata"]["labels"].clone()).unwrap()
    }

    fn ours(&self) -> BTreeMap<String, String> {
        self.labels()
            .into_iter()
            .filter(|(k, _)| k.starts_with(PREFIX))
            .collect()
    }

    /// One pass of the loader against the stand-in, with `extra` arguments (the CA and the
    /// token are the right ones unless `extra` names others).
    fn load(&self, extra: &[&str]) -> (Output, Value) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_addon-sandbox"));
        command
            .args(["node", "load-profiles", "--once", "--dir"])
            .arg(self.path("profiles"))
            .arg("--state")
            .arg(self.path("state"))
            .arg("--compile-to")
            .arg(self.path("bin"));
        for (flag, file) in [("--ca-file", "ca.crt"), ("--token-file", "token")] {
            if !extra.contains(&flag) {
                command.arg(flag).arg(self.path(file));
            }
        }
        let out = command
            .args(extra)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("KUBERNETES_SERVICE_PORT")
            .env_remove("NODE_NAME")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let report =
            serde_json::from_str(stdout.lines().next().unwrap_or("null")).unwrap_or(Value::Null);
        (out, report)
    }

    fn load_as(&self, node: &str) -> (Output, Value) {
        let server = format!("https://127.0.0.1:{}", self.port);
        self.load(&["--api-server", &server, "--node-name", node])
    }
}

fn setup() -> Option<Setup> {
    common::parser()?;
    let tmp = tempfile::tempdir().unwrap();
    make_ca(tmp.path(), "ca");
    make_ca(tmp.path(), "other-ca");
    make_server_cert(tmp.path(), "ca");
    std::fs::write(tmp.path().join("token"), format!("{TOKEN}\n")).unwrap();
    std::fs::write(tmp.path().join("wrong-token"), "not-the-token").unwrap();
    std::fs::create_dir_all(tmp.path().join("profiles")).unwrap();
    let node = json!({
        "kind": "Node", "apiVersion": "v1",
        "metadata": {
            "name": NODE, "resourceVersion": "100",
            "labels": {
                "kubernetes.io/hostname": NODE,
                "kubernetes.io/os": "linux",
                "topology.kubernetes.io/zone": "kitchen",
                "addon-sandbox.io/slug": "not-ours-to-touch",
                format!("{PREFIX}local_stale"): "00000000",
            },
        },
        "spec": {}, "status": {},
    });
    let cluster = Arc::new(Mutex::new(Cluster {
        nodes: BTreeMap::from([(NODE.to_owned(), node)]),
        requests: Vec::new(),
        token: TOKEN.to_owned(),
    }));
    let port = serve(tmp.path(), cluster.clone());
    Some(Setup { tmp, port, cluster })
}

/// Kubernetes' node affinity: terms ORed, expressions of a term ANDed (`In` only here).
fn schedulable(terms: &[NodeSelectorTerm], labels: &BTreeMap<String, String>) -> bool {
    terms.iter().any(|t| {
        let exprs = t.match_expressions.as_deref().unwrap_or_default();
        !exprs.is_empty()
            && exprs.iter().all(|e| {
                assert_eq!(e.operator, "In");
                labels
                    .get(&e.key)
                    .is_some_and(|v| e.values.as_ref().unwrap().contains(v))
            })
    })
}

/// The Deployment's required node terms and its profile entry.
fn addon(extra: &str, slug: &str) -> (Vec<NodeSelectorTerm>, (String, String)) {
    let m = manifests(extra, slug);
    let spec = m.deployment.spec.unwrap().template.spec.unwrap();
    let terms = spec
        .affinity
        .unwrap()
        .node_affinity
        .unwrap()
        .required_during_scheduling_ignored_during_execution
        .unwrap()
        .node_selector_terms;
    let entry = m.profile.unwrap().data.unwrap().into_iter().next().unwrap();
    (terms, entry)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_loader_labels_its_node_and_the_pods_wait_for_the_label() {
    let Some(s) = setup() else { return };
    let dir = s.path("profiles");
    let (alpha_terms, alpha) = addon("map: [share]\n", "alpha");
    let (beta_terms, beta) = addon("map: [ssl]\n", "beta");
    let untouched: BTreeMap<String, String> = s
        .labels()
        .into_iter()
        .filter(|(k, _)| !k.starts_with(PREFIX))
        .collect();
    assert!(
        !schedulable(&alpha_terms, &s.labels()),
        "no profile loaded yet"
    );

    // Loaded: each profile's label is the hash of its text; the stale one of ours is removed.
    mount_configmap(&dir, "2026_12_01_1", &[alpha.clone(), beta.clone()]);
    let (out, r) = s.load_as(NODE);
    assert!(out.status.success(), "{r} {}", stderr(&out));
    assert_eq!(r["loaded"], json!(["local_alpha", "local_beta"]));
    let hash = |text: &str| kube_hash(text);
    assert_eq!(
        s.ours(),
        BTreeMap::from([
            (format!("{PREFIX}local_alpha"), hash(&alpha.1)),
            (format!("{PREFIX}local_beta"), hash(&beta.1)),
        ])
    );
    assert_eq!(
        r["labels"]["removed"],
        json!([format!("{PREFIX}local_stale")])
    );
    assert!(schedulable(&alpha_terms, &s.labels()) && schedulable(&beta_terms, &s.labels()));

    // The same again: read, nothing to patch.
    let patches = |s: &Setup| {
        s.cluster
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|r| r.0 == "PATCH")
            .count()
    };
    let before = patches(&s);
    let (out, _) = s.load_as(NODE);
    assert!(out.status.success());
    assert_eq!(patches(&s), before, "nothing changed, nothing patched");

    // beta's text changes: its new pods do not fit the node until the loader has loaded it.
    let (beta2_terms, beta2) = addon("map: [ssl, media:rw]\n", "beta");
    assert!(
        !schedulable(&beta2_terms, &s.labels()),
        "the old text is loaded"
    );
    mount_configmap(&dir, "2026_12_01_2", &[alpha.clone(), beta2.clone()]);
    let (out, r) = s.load_as(NODE);
    assert!(out.status.success(), "{r}");
    assert_eq!(r["replaced"], json!(["local_beta"]));
    assert_eq!(s.ours()[&format!("{PREFIX}local_beta")], hash(&beta2.1));
    assert_ne!(hash(&beta2.1), hash(&beta.1));
    assert!(schedulable(&beta2_terms, &s.labels()) && !schedulable(&beta_terms, &s.labels()));

    // alpha's entry goes away: unloaded, its label removed; no other label was ever touched.
    mount_configmap(&dir, "2026_12_01_3", std::slice::from_ref(&beta2));
    let (out, r) = s.load_as(NODE);
    assert!(out.status.success(), "{r}");
    assert_eq!(r["unloaded"], json!(["local_alpha"]));
    assert_eq!(
        s.ours().keys().collect::<Vec<_>>(),
        [&format!("{PREFIX}local_beta")]
    );
    assert!(!schedulable(&alpha_terms, &s.labels()));
    let others: BTreeMap<String, String> = s
        .labels()
        .into_iter()
        .filter(|(k, _)| !k.starts_with(PREFIX))
        .collect();
    assert_eq!(others, untouched);

    // Every patch was a merge patch naming only labels of ours.
    let cluster = s.cluster.lock().unwrap();
    for (method, path, content_type, body) in &cluster.requests {
        assert_eq!(path, &format!("/api/v1/nodes/{NODE}"));
        if method == "PATCH" {
            assert_eq!(content_type, "application/merge-patch+json");
            let patch: Value = serde_json::from_str(body).unwrap();
            let labels = patch["metadata"]["labels"].as_object().unwrap();
            assert!(labels.keys().all(|k| k.starts_with(PREFIX)), "{body}");
            assert_eq!(patch.as_object().unwrap().len(), 1, "{body}");
        }
    }
}

fn kube_hash(text: &str) -> String {
    addon_sandbox::kube::profile_hash8(text)
}

/// Failures: each a clear error and a non-zero exit, and never a profile unloaded for it.
#[test]
fn labelling_failures_are_clear_and_leave_the_profiles_loaded() {
    let Some(s) = setup() else { return };
    let (_, alpha) = addon("map: [share]\n", "alpha");
    mount_configmap(&s.path("profiles"), "2026_12_01_1", &[alpha]);
    let compiled = s.path("bin").join("local_alpha.bin");
    let server = format!("https://127.0.0.1:{}", s.port);
    let before = s.labels();

    // A server whose certificate does not chain to the CA given: refused, nothing sent.
    let other_ca = s.path("other-ca.crt");
    let (out, r) = s.load(&[
        "--api-server",
        &server,
        "--node-name",
        NODE,
        "--ca-file",
        other_ca.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("TLS handshake refused") && stderr(&out).contains("UnknownIssuer"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        r["loaded"],
        json!(["local_alpha"]),
        "the profiles load all the same"
    );
    assert!(
        r["labels"]["error"]
            .as_str()
            .unwrap()
            .contains("UnknownIssuer"),
        "{r}"
    );
    assert!(compiled.exists());
    assert!(
        s.cluster.lock().unwrap().requests.is_empty(),
        "no request passed the handshake"
    );

    // The wrong token: the API server's 401 and its message.
    let wrong = s.path("wrong-token");
    let (out, _) = s.load(&[
        "--api-server",
        &server,
        "--node-name",
        NODE,
        "--token-file",
        wrong.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("GET /api/v1/nodes/node-1: HTTP 401: Unauthorized"),
        "{}",
        stderr(&out)
    );
    assert!(compiled.exists());

    // A node the API server does not know: its 404 and message.
    let (out, _) = s.load_as("node-9");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("HTTP 404: nodes \"node-9\" not found (NotFound)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(s.labels(), before, "no failure changed a label");

    // In a pod: the address and the node's name from the environment, as the kubelet and the
    // downward API give them.
    let out = Command::new(env!("CARGO_BIN_EXE_addon-sandbox"))
        .args(["node", "load-profiles", "--once", "--label-node", "--dir"])
        .arg(s.path("profiles"))
        .args([
            "--state",
            s.path("state").to_str().unwrap(),
            "--compile-to",
            s.path("bin").to_str().unwrap(),
        ])
        .args([
            "--ca-file",
            s.path("ca.crt").to_str().unwrap(),
            "--token-file",
            s.path("token").to_str().unwrap(),
        ])
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", s.port.to_string())
        .env("NODE_NAME", NODE)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        s.ours().keys().collect::<Vec<_>>(),
        [&format!("{PREFIX}local_alpha")]
    );

    // Not in a cluster: it loads, and says the labels were not set; with --label-node it
    // refuses before loading anything.
    let (out, r) = s.load(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        r["labels"]
            .as_str()
            .unwrap()
            .starts_with("not set: no API server"),
        "{r}"
    );
    let (out, _) = s.load(&["--label-node"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--label-node: no API server"),
        "{}",
        stderr(&out)
    );
    // An API server but no node name, and plain http: refused as bad settings.
    let (out, _) = s.load(&["--api-server", &server]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--node-name or NODE_NAME"),
        "{}",
        stderr(&out)
    );
    let plain = format!("http://127.0.0.1:{}", s.port);
    let (out, _) = s.load(&["--api-server", &plain, "--node-name", NODE]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("never plain http"),
        "{}",
        stderr(&out)
    );
    assert!(compiled.exists(), "no failure unloaded a profile");
}

/// `--emit-loader`'s objects: the account may only read and patch nodes, the DaemonSet runs
/// as it with its node's name from the downward API and must label; the Deployment waits for
/// the label. Kubernetes 1.34's schemas accept them all.
#[test]
fn the_loader_runs_as_an_account_that_may_only_get_and_patch_nodes() {
    use addon_sandbox::kube::{self, KubeOptions};
    let options = KubeOptions {
        namespace: "sandboxes".into(),
        ..KubeOptions::default()
    };
    let m = manifests("map: [share]\n", "alpha");
    let (account, role, binding) = kube::loader_rbac(&options);
    assert_eq!(account.metadata.namespace.as_deref(), Some("sandboxes"));
    let rules = role.rules.as_ref().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].api_groups, Some(vec![String::new()]));
    assert_eq!(rules[0].resources, Some(vec!["nodes".to_owned()]));
    assert_eq!(rules[0].verbs, ["get", "patch"]);
    assert!(rules[0].resource_names.is_none() && rules[0].non_resource_urls.is_none());
    assert_eq!(binding.role_ref.kind, "ClusterRole");
    assert_eq!(binding.role_ref.name, role.metadata.name.clone().unwrap());
    let subject = &binding.subjects.as_ref().unwrap()[0];
    assert_eq!(subject.kind, "ServiceAccount");
    assert_eq!(Some(&subject.name), account.metadata.name.as_ref());
    assert_eq!(subject.namespace.as_deref(), Some("sandboxes"));

    let all = std::slice::from_ref(&m);
    let (ds, docs) = kube::loader_documents(all, "addon-sandbox:test", &options).unwrap();
    let spec = ds.spec.unwrap().template.spec.unwrap();
    assert_eq!(spec.service_account_name, account.metadata.name);
    assert_eq!(spec.automount_service_account_token, Some(true));
    let container = &spec.containers[0];
    assert!(
        container
            .command
            .as_ref()
            .unwrap()
            .contains(&"--label-node".to_owned())
    );
    let env = &container.env.as_ref().unwrap()[0];
    assert_eq!(env.name, "NODE_NAME");
    let field = env.value_from.as_ref().unwrap().field_ref.as_ref().unwrap();
    assert_eq!(field.field_path, "spec.nodeName");
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "DaemonSet"
        ]
    );

    let Some(validate) = common::kube_node::kubernetes_validate() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("all.yaml");
    let mut all_docs = m.documents().unwrap();
    all_docs.extend(docs);
    std::fs::write(&file, kube::to_yaml(&all_docs).unwrap()).unwrap();
    let out = Command::new(&validate)
        .args(["--strict", "--quiet", "-k", "1.34.0"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    // It judges the new parts too: a misspelt field of the affinity is refused.
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("nodeSelectorTerms:", "nodeSelectorTerm:");
    assert!(text.contains("nodeSelectorTerm:"));
    std::fs::write(&file, text).unwrap();
    let out = Command::new(&validate)
        .args(["--strict", "--quiet", "-k", "1.34.0"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success(), "an unknown field passed");
}

/// The loader as the DaemonSet runs it (a pass every second): it relabels when a text changes,
/// and a failure retrying cannot mend (the token is wrong) ends it with status 2 while the
/// profiles stay loaded.
#[test]
fn the_running_loader_follows_the_configmap_and_stops_on_a_wrong_token() {
    let Some(s) = setup() else { return };
    let (_, beta) = addon("map: [ssl]\n", "beta");
    let (_, beta2) = addon("map: [ssl, media:rw]\n", "beta");
    mount_configmap(
        &s.path("profiles"),
        "2026_12_01_1",
        std::slice::from_ref(&beta),
    );
    std::fs::write(s.path("loop-token"), TOKEN).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_addon-sandbox"))
        .args(["node", "load-profiles", "--interval", "1", "--dir"])
        .arg(s.path("profiles"))
        .args(["--state", s.path("state").to_str().unwrap()])
        .args(["--compile-to", s.path("bin").to_str().unwrap()])
        .args(["--ca-file", s.path("ca.crt").to_str().unwrap()])
        .args(["--token-file", s.path("loop-token").to_str().unwrap()])
        .args(["--api-server", &format!("https://127.0.0.1:{}", s.port)])
        .args(["--node-name", NODE])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let key = format!("{PREFIX}local_beta");
    let wait_for = |what: &mut dyn FnMut() -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !what() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        what()
    };
    let labelled = wait_for(&mut || s.ours().get(&key) == Some(&kube_hash(&beta.1)));
    let changed = labelled && {
        mount_configmap(
            &s.path("profiles"),
            "2026_12_01_2",
            std::slice::from_ref(&beta2),
        );
        wait_for(&mut || s.ours().get(&key) == Some(&kube_hash(&beta2.1)))
    };
    // A wrong token (as if rotated wrongly) and a change to label: the 401 ends the loader.
    let stopped = changed && {
        std::fs::write(s.path("loop-token"), "revoked").unwrap();
        mount_configmap(&s.path("profiles"), "2026_12_01_3", &[]);
        wait_for(&mut || child.try_wait().unwrap().is_some())
    };
    if !stopped {
        child.kill().unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        labelled && changed,
        "labels: {:?} {}",
        s.ours(),
        stderr(&out)
    );
    assert!(stopped, "the loader went on after a 401: {}", stderr(&out));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("HTTP 401: Unauthorized"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("the profiles stay loaded"),
        "{}",
        stderr(&out)
    );
    // It unloaded beta (its entry went) before failing to label: that is the pass, not the
    // failure; the label that could not be removed stays until a loader can.
    assert!(!s.path("bin").join("local_beta.bin").exists());
    assert_eq!(s.ours().get(&key), Some(&kube_hash(&beta2.1)));
}

/// Pods wait for the loader's label unless profiles are loaded by other means:
/// `--no-wait-for-loader`, or `--spo` without `--emit-loader` (the operator's own
/// AppArmorProfile); with both `--spo` and the loader they wait.
#[test]
fn pods_wait_for_the_loader_only_where_the_loader_loads() {
    let dir = common::addon_dir(&common::minimal(""));
    let path = dir.path().to_str().unwrap();
    let waits = |extra: &[&str]| {
        let mut args = vec!["kube", "--gateway-ip", "10.0.0.2"];
        args.extend_from_slice(extra);
        args.push(path);
        let out = Command::new(env!("CARGO_BIN_EXE_addon-sandbox"))
            .args(&args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let yaml = String::from_utf8_lossy(&out.stdout);
        yaml.contains("key: profiles.addon-sandbox.io/")
    };
    assert!(waits(&[]));
    assert!(waits(&["--emit-loader"]));
    assert!(!waits(&["--no-wait-for-loader"]));
    assert!(!waits(&["--spo"]));
    assert!(waits(&["--spo", "--emit-loader"]));
}
