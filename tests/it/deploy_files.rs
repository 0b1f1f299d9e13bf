//! The deployment files (Dockerfile, deploy/docker-compose.yml, deploy/k8s/*.yaml) agree
//! with the real program: every YAML parses, every command line they run is accepted by
//! the real binary, every configuration they embed loads with pikachu's own loader (with
//! the environment they give it), and probes, ports, paths, volumes, environment
//! variables and secrets point at what that configuration says. Docker and Kubernetes
//! are not needed: a mismatch here is a deployment that would fail at its first start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::harness::{binary, repo_root, run_binary, TempDir};
use pikachu::config::{self, Config};
use serde_yaml::Value;

const IMAGE_BINARY: &str = "/usr/local/bin/pikachu";
const IMAGE_DATA_DIR: &str = "/var/lib/pikachu";

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo_root().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// Every document of a (multi-document) YAML file.
fn yaml_docs(rel: &str) -> Vec<Value> {
    use serde::Deserialize;
    let text = read(rel);
    let docs: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{rel} is not valid YAML: {e}")))
        .filter(|v| !v.is_null())
        .collect();
    assert!(!docs.is_empty(), "{rel} holds no YAML document");
    docs
}

fn k8s_files() -> Vec<String> {
    let dir = repo_root().join("deploy/k8s");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("deploy/k8s exists")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
        .map(|n| format!("deploy/k8s/{n}"))
        .collect();
    files.sort();
    files
}

fn k8s_docs() -> Vec<Value> {
    k8s_files().iter().flat_map(|f| yaml_docs(f)).collect()
}

fn kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter()
        .filter(|d| d["kind"].as_str() == Some(kind))
        .collect()
}

fn str_of<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {v:?}"))
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Sequence(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                other => panic!("not a string in a command line: {other:?}"),
            })
            .collect(),
        Value::Null => Vec::new(),
        other => panic!("expected a list of strings, got {other:?}"),
    }
}

/// Writes an embedded config.yaml (+ tasks.yaml beside it) and loads it with pikachu's
/// loader and the given environment.
fn load_embedded(
    dir: &TempDir,
    name: &str,
    config_yaml: &str,
    tasks_yaml: Option<&str>,
    env: &BTreeMap<String, String>,
) -> (Config, PathBuf) {
    let sub = dir.path().join(name);
    std::fs::create_dir_all(&sub).expect("mkdir");
    let config_path = sub.join("config.yaml");
    std::fs::write(&config_path, config_yaml).expect("write config");
    if let Some(t) = tasks_yaml {
        std::fs::write(sub.join("tasks.yaml"), t).expect("write tasks");
    }
    let lookup = |k: &str| env.get(k).cloned();
    let cfg = config::load_with_env(&config_path, &lookup).unwrap_or_else(|e| {
        panic!("the config embedded in {name} does not load:\n{e}\n---\n{config_yaml}")
    });
    assert!(!cfg.tasks.is_empty(), "{name}: no tasks");
    assert!(
        cfg.warnings.is_empty(),
        "{name}: warnings {:?}",
        cfg.warnings
    );
    (cfg, config_path)
}

fn assert_env_names_exist(names: impl IntoIterator<Item = String>, origin: &str) {
    let known = config::env_var_names();
    for name in names {
        if name.starts_with("PIKACHU_") {
            assert!(
                known.contains(&name),
                "{origin}: {name} is not a variable pikachu reads; known: {known:?}"
            );
        }
    }
}

/// The real binary accepts `argv` (without argv[0]): run with `--help` appended, which
/// argh answers with exit 0 only after every earlier flag and subcommand parsed. A
/// `-config` path of the image is replaced by the embedded file written locally.
fn assert_accepted(argv: &[String], config_in_image: &str, local_config: &Path, origin: &str) {
    assert_eq!(
        argv.first().map(String::as_str),
        Some(IMAGE_BINARY),
        "{origin}: runs {argv:?}"
    );
    let mut args: Vec<String> = argv[1..]
        .iter()
        .map(|a| {
            if a == config_in_image {
                local_config.display().to_string()
            } else {
                a.clone()
            }
        })
        .collect();
    args.push("--help".into());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, stdout, stderr) = run_binary(&refs, &[]);
    assert_eq!(
        code, 0,
        "{origin}: pikachu does not accept {argv:?}:\n{stdout}{stderr}"
    );
    assert!(stdout.contains("Usage:"), "{origin}: {stdout}");
}

struct Dockerfile {
    entrypoint: Vec<String>,
    user: String,
    expose: Vec<u16>,
    volumes: Vec<String>,
    final_from: String,
    text: String,
}

fn dockerfile() -> Dockerfile {
    let text = read("Dockerfile");
    // Joined continuation lines, comments dropped.
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for raw in text.lines() {
        let l = raw.trim();
        if l.starts_with('#') || l.is_empty() {
            continue;
        }
        match l.strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(l);
                lines.push(std::mem::take(&mut current));
            }
        }
    }
    let mut d = Dockerfile {
        entrypoint: Vec::new(),
        user: String::new(),
        expose: Vec::new(),
        volumes: Vec::new(),
        final_from: String::new(),
        text: text.clone(),
    };
    for l in &lines {
        let (instr, rest) = l.split_once(' ').unwrap_or((l, ""));
        match instr.to_ascii_uppercase().as_str() {
            "FROM" => {
                // Settings of an earlier stage do not reach the final image.
                d.final_from = rest.split_whitespace().next().unwrap_or("").to_owned();
                d.user.clear();
                d.entrypoint.clear();
                d.expose.clear();
                d.volumes.clear();
            }
            "ENTRYPOINT" => {
                d.entrypoint = serde_json::from_str(rest).expect("ENTRYPOINT in exec (JSON) form");
            }
            "USER" => d.user = rest.trim().to_owned(),
            "EXPOSE" => d.expose.extend(rest.split_whitespace().map(|p| {
                p.trim_end_matches("/tcp")
                    .parse::<u16>()
                    .expect("EXPOSE port")
            })),
            "VOLUME" => {
                let v: Vec<String> =
                    serde_json::from_str(rest).unwrap_or_else(|_| vec![rest.trim().to_owned()]);
                d.volumes.extend(v);
            }
            _ => {}
        }
    }
    d
}

#[test]
fn the_dockerfile_builds_the_static_binary_and_runs_it_as_non_root() {
    let d = dockerfile();
    assert!(
        d.final_from.contains("distroless/static") || d.final_from == "scratch",
        "the final image should hold only the static binary: FROM {}",
        d.final_from
    );
    let user = d.user.split(':').next().unwrap_or("");
    assert!(
        !user.is_empty() && user != "root" && user != "0",
        "USER {:?}",
        d.user
    );
    assert!(
        d.text.contains("RUN scripts/build-static.sh"),
        "the builder runs the project's script"
    );
    assert!(
        d.text
            .contains(&format!("/src/dist/pikachu {IMAGE_BINARY}")),
        "binary copied to {IMAGE_BINARY}"
    );
    assert!(
        d.volumes.iter().any(|v| v == IMAGE_DATA_DIR),
        "VOLUME {IMAGE_DATA_DIR}: {:?}",
        d.volumes
    );
    assert_eq!(d.expose, [8080], "EXPOSE the default server.port");
    assert_eq!(
        d.entrypoint[..],
        [IMAGE_BINARY, "-config", "/etc/pikachu/config.yaml"]
    );
    // Everything the build stage copies from the context exists and is not ignored.
    let ignored = read(".dockerignore");
    let ignored: Vec<&str> = ignored
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_end_matches('/'))
        .collect();
    for l in d
        .text
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let parts: Vec<&str> = l.split_whitespace().collect();
        for src in &parts[1..parts.len() - 1] {
            assert!(repo_root().join(src).exists(), "COPY {src}: no such file");
            assert!(
                !ignored.iter().any(|i| src.starts_with(i)),
                "COPY {src} is excluded by .dockerignore"
            );
        }
    }
    let script = repo_root().join("scripts/build-static.sh");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&script)
        .expect("scripts/build-static.sh")
        .permissions()
        .mode();
    assert!(
        mode & 0o111 != 0,
        "scripts/build-static.sh is not executable"
    );
    // The entrypoint with a subcommand appended (`docker run pikachu check`) parses.
    let dir = TempDir::new("dockerfile");
    let cfg = dir.path().join("config.yaml");
    for sub in [
        &[][..],
        &["check"],
        &["version"],
        &["replay-dead-letters"],
        &["listen", "--port", "3000", "--bind", "0.0.0.0"],
    ] {
        let mut argv = d.entrypoint.clone();
        argv.extend(sub.iter().map(|s| s.to_string()));
        assert_accepted(
            &argv,
            "/etc/pikachu/config.yaml",
            &cfg,
            "Dockerfile ENTRYPOINT",
        );
    }
}

#[test]
fn docker_compose_runs_what_pikachu_accepts() {
    let docs = yaml_docs("deploy/docker-compose.yml");
    let compose = &docs[0];
    let services = &compose["services"];
    let configs = &compose["configs"];
    let d = dockerfile();
    let dir = TempDir::new("compose");

    // MariaDB as pikachu needs it.
    let db_cmd = strings(&services["mariadb"]["command"]);
    for flag in [
        "--log-bin",
        "--binlog-format=ROW",
        "--binlog-row-metadata=FULL",
        "--binlog-row-image=FULL",
    ] {
        assert!(
            db_cmd
                .iter()
                .any(|a| a == flag || a.starts_with(&format!("{flag}="))),
            "mariadb lacks {flag}: {db_cmd:?}"
        );
    }

    // pikachu: config and tasks from inline configs, env, volume, port.
    let p = &services["pikachu"];
    let mut mounted: BTreeMap<String, String> = BTreeMap::new();
    for c in p["configs"].as_sequence().expect("pikachu configs") {
        let source = str_of(&c["source"], "config source");
        let target = str_of(&c["target"], "config target");
        mounted.insert(
            target.to_owned(),
            str_of(&configs[source]["content"], "config content").to_owned(),
        );
    }
    let env: BTreeMap<String, String> = p["environment"]
        .as_mapping()
        .expect("pikachu environment as a mapping")
        .iter()
        .map(|(k, v)| {
            (
                str_of(k, "env name").to_owned(),
                str_of(v, "env value").to_owned(),
            )
        })
        .collect();
    assert_env_names_exist(env.keys().cloned(), "docker-compose pikachu");
    let (cfg, local) = load_embedded(
        &dir,
        "compose",
        &mounted["/etc/pikachu/config.yaml"],
        mounted.get("/etc/pikachu/tasks.yaml").map(String::as_str),
        &env,
    );
    assert_eq!(cfg.database.host, "mariadb", "the compose service name");
    assert_eq!(
        cfg.database.password.expose(),
        env["PIKACHU_DATABASE_PASSWORD"]
    );
    assert_eq!(cfg.data_dir, Path::new(IMAGE_DATA_DIR));
    assert!(cfg.server.enabled);
    let volumes = strings(&p["volumes"]);
    assert!(
        volumes
            .iter()
            .any(|v| v.ends_with(&format!(":{IMAGE_DATA_DIR}"))),
        "data_dir volume: {volumes:?}"
    );
    let ports = strings(&p["ports"]);
    assert!(
        ports
            .iter()
            .any(|m| m.ends_with(&format!(":{}", cfg.server.port))),
        "server.port published: {ports:?}"
    );
    assert!(
        p["entrypoint"].is_null() && p["command"].is_null(),
        "pikachu runs the image's ENTRYPOINT"
    );
    assert_accepted(
        &d.entrypoint,
        "/etc/pikachu/config.yaml",
        &local,
        "docker-compose pikachu",
    );

    // The account the init script creates is the one the config logs in with, with the
    // privileges `pikachu check` asks for and the password the environment gives.
    let init = str_of(&configs["mariadb_init"]["content"], "mariadb_init");
    let user = &cfg.database.user;
    assert!(
        init.contains(&format!(
            "CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY '{}'",
            env["PIKACHU_DATABASE_PASSWORD"]
        )),
        "{init}"
    );
    assert!(
        init.contains(&format!(
            "GRANT SELECT, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO '{user}'@'%'"
        )),
        "{init}"
    );
    for t in &cfg.tasks {
        assert!(
            init.contains(&format!("{}.{}", cfg.database.database, t.table)),
            "init creates {}",
            t.table
        );
    }

    // The listener: the callbacks point at it, and its command line parses.
    let l = &services["listener"];
    let mut argv = strings(&l["entrypoint"]);
    argv.extend(strings(&l["command"]));
    assert_accepted(
        &argv,
        "/etc/pikachu/config.yaml",
        &local,
        "docker-compose listener",
    );
    let port = argv
        .iter()
        .position(|a| a == "--port")
        .map(|i| argv[i + 1].clone())
        .expect("listen --port");
    assert!(
        argv.windows(2)
            .any(|w| w[0] == "--bind" && w[1] == "0.0.0.0"),
        "the listener must bind 0.0.0.0 in a container"
    );
    for t in &cfg.tasks {
        assert!(
            t.callback_url
                .to_string()
                .starts_with(&format!("http://listener:{port}/")),
            "{}",
            t.callback_url
        );
    }
}

#[test]
fn every_kubernetes_manifest_parses_and_fits_the_config() {
    let docs = k8s_docs();
    for (i, d) in docs.iter().enumerate() {
        assert!(
            d["apiVersion"].is_string() && d["kind"].is_string(),
            "document {i} lacks apiVersion/kind: {d:?}"
        );
        assert!(
            d["metadata"]["name"].is_string(),
            "document {i} has no name"
        );
    }
    let name_of = |d: &Value| str_of(&d["metadata"]["name"], "name").to_owned();
    let cms = kind(&docs, "ConfigMap");
    let secrets = kind(&docs, "Secret");
    let deployments = kind(&docs, "Deployment");
    let pvcs = kind(&docs, "PersistentVolumeClaim");
    assert_eq!(deployments.len(), 1);
    let dep = deployments[0];
    assert_eq!(
        dep["spec"]["replicas"].as_u64(),
        Some(1),
        "one reader per server_id"
    );
    assert_eq!(
        dep["spec"]["strategy"]["type"].as_str(),
        Some("Recreate"),
        "never two pods at once"
    );
    let pod = &dep["spec"]["template"]["spec"];
    let containers = pod["containers"].as_sequence().expect("containers");
    assert_eq!(containers.len(), 1);
    let c = &containers[0];

    // Volumes: the ConfigMap at the config's directory, a persistent data_dir.
    let volumes = pod["volumes"].as_sequence().expect("volumes");
    let mount_of = |volume: &str| -> String {
        c["volumeMounts"]
            .as_sequence()
            .expect("volumeMounts")
            .iter()
            .find(|m| m["name"].as_str() == Some(volume))
            .map(|m| str_of(&m["mountPath"], "mountPath").to_owned())
            .unwrap_or_else(|| panic!("volume {volume} is not mounted"))
    };
    let mut config_dir = None;
    let mut data_mount = None;
    let mut cm_name = None;
    for v in volumes {
        let vname = str_of(&v["name"], "volume name");
        if let Some(cm) = v["configMap"]["name"].as_str() {
            config_dir = Some(mount_of(vname));
            cm_name = Some(cm.to_owned());
        }
        if let Some(claim) = v["persistentVolumeClaim"]["claimName"].as_str() {
            assert!(pvcs.iter().any(|p| name_of(p) == claim), "no PVC {claim}");
            data_mount = Some(mount_of(vname));
        }
    }
    let config_dir = config_dir.expect("a ConfigMap volume");
    let cm_name = cm_name.expect("ConfigMap name");
    let cm = cms
        .iter()
        .find(|m| name_of(m) == cm_name)
        .unwrap_or_else(|| panic!("no ConfigMap {cm_name}"));

    // Environment: every PIKACHU_* name is read by pikachu, every secret exists.
    let mut env = BTreeMap::new();
    for e in c["env"].as_sequence().expect("env") {
        let name = str_of(&e["name"], "env name").to_owned();
        let value = if let Some(v) = e["value"].as_str() {
            Some(v.to_owned())
        } else {
            let r = &e["valueFrom"]["secretKeyRef"];
            let (sname, key) = (
                str_of(&r["name"], "secret name"),
                str_of(&r["key"], "secret key"),
            );
            let optional = r["optional"].as_bool().unwrap_or(false);
            let secret = secrets.iter().find(|s| name_of(s) == sname);
            let value = secret.and_then(|s| s["stringData"][key].as_str().map(str::to_owned));
            assert!(
                optional || value.is_some(),
                "env {name}: Secret {sname} has no key {key}"
            );
            value
        };
        if let Some(v) = value {
            env.insert(name, v);
        }
    }
    assert_env_names_exist(env.keys().cloned(), "deployment env");
    assert!(
        env.contains_key("PIKACHU_DATABASE_PASSWORD"),
        "the password comes from the Secret"
    );

    // The embedded config loads, with that environment.
    let dir = TempDir::new("k8s");
    let data = &cm["data"];
    let (cfg, local) = load_embedded(
        &dir,
        "configmap",
        str_of(&data["config.yaml"], "config.yaml"),
        data["tasks.yaml"].as_str(),
        &env,
    );
    assert_eq!(
        cfg.database.password.expose(),
        env["PIKACHU_DATABASE_PASSWORD"]
    );
    assert_eq!(
        Some(cfg.data_dir.display().to_string()),
        data_mount,
        "data_dir is the persistent volume"
    );
    assert!(cfg.server.enabled, "probes need the health server");
    assert!(
        cfg.dispatcher.shutdown_timeout.as_secs()
            < pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(30)
    );

    // The command line: command (or the image's ENTRYPOINT) + args.
    let d = dockerfile();
    let argv = if c["command"].is_null() {
        let mut a = d.entrypoint.clone();
        a.extend(strings(&c["args"]));
        a
    } else {
        let mut a = strings(&c["command"]);
        a.extend(strings(&c["args"]));
        a
    };
    let config_in_image = format!("{config_dir}/config.yaml");
    assert!(
        argv.contains(&config_in_image),
        "{argv:?} does not name {config_in_image}"
    );
    assert_accepted(&argv, &config_in_image, &local, "k8s deployment");

    // Probes and ports are the config's server.path and server.port.
    let port_number = |p: &Value| -> u64 {
        match p {
            Value::Number(n) => n.as_u64().expect("port"),
            Value::String(name) => c["ports"]
                .as_sequence()
                .expect("ports")
                .iter()
                .find(|q| q["name"].as_str() == Some(name))
                .and_then(|q| q["containerPort"].as_u64())
                .unwrap_or_else(|| panic!("no container port named {name}")),
            other => panic!("port {other:?}"),
        }
    };
    for probe in ["readinessProbe", "livenessProbe"] {
        let get = &c[probe]["httpGet"];
        assert_eq!(
            get["path"].as_str(),
            Some(cfg.server.path.as_str()),
            "{probe} path"
        );
        assert_eq!(
            port_number(&get["port"]),
            u64::from(cfg.server.port),
            "{probe} port"
        );
    }
    let container_ports: Vec<u64> = c["ports"]
        .as_sequence()
        .expect("ports")
        .iter()
        .filter_map(|p| p["containerPort"].as_u64())
        .collect();
    assert!(
        container_ports.contains(&u64::from(cfg.server.port)),
        "{container_ports:?}"
    );
    let ann = &dep["spec"]["template"]["metadata"]["annotations"];
    if let Some(p) = ann["prometheus.io/port"].as_str() {
        assert_eq!(p, cfg.server.port.to_string());
        assert_eq!(ann["prometheus.io/path"].as_str(), Some("/metrics"));
    }
    // The image's user owns the data volume.
    assert_eq!(pod["securityContext"]["fsGroup"].as_u64(), Some(65532));
    let user = d.user.split(':').next().unwrap_or("").to_owned();
    assert_eq!(
        pod["securityContext"]["runAsUser"]
            .as_u64()
            .map(|u| u.to_string()),
        Some(user)
    );
}

/// Guards the guard: a flag the binary does not know is refused, so the acceptance
/// checks above can fail.
#[test]
fn an_unknown_flag_is_refused_by_the_binary() {
    let (code, _, stderr) = run_binary(&["-config", "x.yaml", "--configg", "y", "--help"], &[]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, _) = run_binary(&["listen", "--prot", "3000", "--help"], &[]);
    assert_eq!(code, 2);
    assert!(Path::new(binary()).exists());
}

#[test]
fn the_ha_manifest_runs_two_instances_of_one_group() {
    let docs = yaml_docs("deploy/k8s/ha/pikachu-ha.yaml");
    let sets = kind(&docs, "StatefulSet");
    assert_eq!(sets.len(), 1);
    let set = sets[0];
    assert_eq!(set["spec"]["replicas"].as_u64(), Some(2), "two instances");
    let pod = &set["spec"]["template"]["spec"];
    let c = &pod["containers"].as_sequence().expect("containers")[0];
    let env: Vec<String> = c["env"]
        .as_sequence()
        .expect("env")
        .iter()
        .map(|e| str_of(&e["name"], "env name").to_owned())
        .collect();
    assert_env_names_exist(env.iter().cloned(), "ha statefulset env");
    let cm = kind(&docs, "ConfigMap")[0];
    let dir = TempDir::new("k8s-ha");
    let password: BTreeMap<String, String> =
        [("PIKACHU_DATABASE_PASSWORD".to_owned(), "pw".to_owned())].into();
    let (cfg, _) = load_embedded(
        &dir,
        "ha-configmap",
        str_of(&cm["data"]["config.yaml"], "config.yaml"),
        cm["data"]["tasks.yaml"].as_str(),
        &password,
    );
    assert_eq!(cfg.ha.group.as_deref(), Some("shop-cdc"));
    assert!(
        matches!(cfg.checkpoint, config::CheckpointStore::Mysql { .. }),
        "the checkpoint is shared in the database"
    );
    assert!(cfg.server.enabled, "the role is in /health");
    // Each pod keeps its own data_dir (dead letters) on its own volume.
    let claims = set["spec"]["volumeClaimTemplates"]
        .as_sequence()
        .expect("volumeClaimTemplates");
    let data_mount = c["volumeMounts"]
        .as_sequence()
        .expect("volumeMounts")
        .iter()
        .find(|m| m["name"] == claims[0]["metadata"]["name"])
        .map(|m| str_of(&m["mountPath"], "mountPath").to_owned());
    assert_eq!(data_mount, Some(cfg.data_dir.display().to_string()));
}

#[test]
fn the_compose_ha_override_adds_a_standby_of_one_group() {
    let base = yaml_docs("deploy/docker-compose.yml");
    let over = yaml_docs("deploy/docker-compose.ha.yml");
    let configs = &base[0]["configs"];
    let services = &over[0]["services"];
    let env_of = |s: &Value| -> BTreeMap<String, String> {
        s["environment"]
            .as_mapping()
            .expect("environment as a mapping")
            .iter()
            .map(|(k, v)| {
                (
                    str_of(k, "env name").to_owned(),
                    str_of(v, "env value").to_owned(),
                )
            })
            .collect()
    };
    let active = env_of(&services["pikachu"]);
    let standby = &services["pikachu-standby"];
    assert_eq!(env_of(standby), active, "one group, one configuration");
    assert_env_names_exist(active.keys().cloned(), "docker-compose.ha.yml");
    let source = |target: &str| -> String {
        standby["configs"]
            .as_sequence()
            .expect("configs")
            .iter()
            .find(|c| c["target"].as_str() == Some(target))
            .map(|c| str_of(&c["source"], "source").to_owned())
            .unwrap_or_else(|| panic!("no config at {target}"))
    };
    let dir = TempDir::new("compose-ha");
    let (cfg, _) = load_embedded(
        &dir,
        "compose-ha",
        str_of(
            &configs[source("/etc/pikachu/config.yaml")]["content"],
            "config",
        ),
        configs[source("/etc/pikachu/tasks.yaml")]["content"].as_str(),
        &active,
    );
    assert_eq!(cfg.ha.group.as_deref(), Some("demo"));
    assert_eq!(
        cfg.checkpoint,
        config::CheckpointStore::Mysql {
            schema: "pikachu".into(),
            table: "checkpoints".into()
        }
    );
    // The account may create and write the checkpoint table.
    let init = str_of(&configs["mariadb_init"]["content"], "mariadb_init");
    assert!(
        init.contains("GRANT CREATE, SELECT, INSERT, UPDATE ON pikachu.* TO 'pikachu'@'%'"),
        "{init}"
    );
    assert_ne!(
        strings(&standby["volumes"]),
        strings(&base[0]["services"]["pikachu"]["volumes"]),
        "each instance has its own data_dir"
    );
}
