//! Starting and stopping `wrangler dev` for the e2e run.
//!
//! wrangler runs in its own process group (it spawns node + two workerd processes); dropping
//! [`WranglerDev`] sends SIGTERM to the group, waits up to 15 s, then SIGKILLs it. A small bash
//! watchdog does the same if this test process dies without running destructors (e.g. Ctrl-C).

use std::ffi::OsString;
use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::util::tail_of_file;

const STOP_GRACE: Duration = Duration::from_secs(15);
/// Start-up only: the build is done (and timed) before wrangler starts.
const DEFAULT_READY_TIMEOUT_S: u64 = 120;
const LOG_TAIL_LINES: usize = 60;

const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;

extern "C" {
    // libc's kill(2); std links libc on unix, and a negative pid addresses a process group.
    fn kill(pid: i32, sig: i32) -> i32;
}

fn signal_group(pgid: u32, sig: i32) -> bool {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { kill(-(pgid as i32), sig) == 0 }
}

pub struct WranglerDev {
    child: Child,
    watchdog: Option<Child>,
    base_url: String,
    log_path: PathBuf,
    d1: LocalD1,
    spec: PeerSpec,
    stopped: bool,
}

/// How this run starts `wrangler dev`: tools, config, the shared state directory and dev
/// registry, the vars. A second instance started from it (a peer) shares the first one's local
/// KV and D1, and its FEED binding reaches the first one's RevocationFeed object through the dev
/// registry: two isolates with their own caches following one feed, as two locations would.
#[derive(Clone)]
pub struct PeerSpec {
    root: PathBuf,
    run_dir: PathBuf,
    wrangler: PathBuf,
    config: PathBuf,
    state_dir: PathBuf,
    env: Vec<(&'static str, OsString)>,
    vars: Vec<String>,
}

impl PeerSpec {
    /// Starts a peer named `name`: the same bundle and vars (plus `extra_vars`, `NAME:value`),
    /// its Durable Object bindings pointed at the first instance's objects, its own inspector
    /// port.
    pub fn start(&self, name: &str, extra_vars: &[String]) -> Result<WranglerDev, String> {
        let src = std::fs::read_to_string(&self.config).map_err(|e| format!("{}: {e}", self.config.display()))?;
        let mut out = String::new();
        let mut in_env = false;
        for line in src.lines() {
            let t = line.trim();
            if t.starts_with('[') {
                in_env = t.starts_with("[env.") || t.starts_with("[[env.");
            }
            if t == "name = \"keyward\"" {
                out.push_str(&format!("name = \"{name}\"\n"));
                continue;
            }
            out.push_str(line);
            out.push('\n');
            // Every Durable Object binding (the feed, the credit counters) reaches the first
            // instance's objects: one deployment, two isolates.
            if !in_env && t.starts_with("class_name = ") {
                out.push_str("script_name = \"keyward\"\n");
            }
        }
        if !out.contains("class_name = \"RevocationFeed\"\nscript_name = \"keyward\"") {
            return Err("wrangler.toml: no RevocationFeed binding to point at the first instance".into());
        }
        let config = self.run_dir.join(format!("{name}.wrangler.toml"));
        std::fs::write(&config, out).map_err(|e| format!("cannot write {}: {e}", config.display()))?;
        let inspector = free_port()?.to_string();
        let mut spec = self.clone();
        spec.vars.extend(extra_vars.iter().cloned());
        spec.launch(name, &config, &["--inspector-port", &inspector])
    }

    fn launch(&self, label: &str, config: &Path, extra: &[&str]) -> Result<WranglerDev, String> {
        // The port is free when chosen, but another process (wrangler's own helpers pick random
        // ports too) can take it before wrangler binds it: then wrangler exits with "Address
        // already in use", and a new port is tried.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port()?;
            let log_path = self.run_dir.join(format!("{label}-{attempt}.log"));
            let log = File::create(&log_path).map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
            let log_err = log
                .try_clone()
                .map_err(|e| format!("cannot dup the log file handle: {e}"))?;
            eprintln!(
                "e2e: starting {label} dev on 127.0.0.1:{port}, log {}",
                log_path.display()
            );
            let mut cmd = Command::new(&self.wrangler);
            cmd.args(["dev", "--ip", "127.0.0.1", "--port", &port.to_string(), "--config"])
                .arg(config)
                .arg("--persist-to")
                .arg(&self.state_dir);
            for v in &self.vars {
                cmd.args(["--var", v]);
            }
            let child = cmd
                .args(extra)
                .arg("--show-interactive-dev-session=false")
                .current_dir(&self.root)
                .envs(self.env.iter().cloned())
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log_err)
                .process_group(0)
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", self.wrangler.display()))?;

            let mut dev = WranglerDev {
                watchdog: None,
                base_url: format!("http://127.0.0.1:{port}"),
                log_path,
                d1: LocalD1 {
                    root: self.root.clone(),
                    wrangler: self.wrangler.clone(),
                    config: config.to_owned(),
                    state_dir: self.state_dir.clone(),
                    env: self.env.clone(),
                },
                spec: self.clone(),
                stopped: false,
                child,
            };
            dev.watchdog = dev.spawn_watchdog();
            match dev.wait_ready() {
                Ok(()) => return Ok(dev),
                Err(e) if attempt < 3 && e.contains("Address already in use") => {
                    eprintln!("e2e: port {port} was taken before wrangler bound it; trying another");
                    dev.stop();
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The local D1 database the running wrangler dev serves, for cases that break it on purpose
/// (`wrangler d1 execute --local` on the same state directory, while dev runs).
#[derive(Clone)]
pub struct LocalD1 {
    root: PathBuf,
    wrangler: PathBuf,
    config: PathBuf,
    state_dir: PathBuf,
    env: Vec<(&'static str, OsString)>,
}

impl LocalD1 {
    /// Runs `sql` (one or more statements); Err with wrangler's output when it fails.
    pub fn execute(&self, sql: &str) -> Result<String, String> {
        let out = Command::new(&self.wrangler)
            .args(["d1", "execute", "DB", "--local", "--config"])
            .arg(&self.config)
            .arg("--persist-to")
            .arg(&self.state_dir)
            .args(["--command", sql])
            .current_dir(&self.root)
            .envs(self.env.iter().cloned())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.wrangler.display()))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            Ok(text)
        } else {
            Err(format!("`wrangler d1 execute` failed ({}):\n{text}", out.status))
        }
    }
}

/// The environment of scripts/env.sh, for commands run from `root`.
fn tool_env(root: &Path) -> Vec<(&'static str, OsString)> {
    let bin = root.join("node_modules/.bin");
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_default()
        .join("bin");
    let mut path = vec![bin.clone(), cargo_bin.clone()];
    path.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    let path = std::env::join_paths(path).expect("PATH entries contain no ':'");
    vec![
        ("PATH", path),
        ("WASM_BINDGEN_BIN", cargo_bin.join("wasm-bindgen").into()),
        ("ESBUILD_BIN", bin.join("esbuild").into()),
        ("WASM_OPT_BIN", bin.join("wasm-opt").into()),
        ("WRANGLER_SEND_METRICS", "false".into()),
        ("CI", std::env::var_os("CI").unwrap_or_else(|| "true".into())),
        ("CLOUDFLARE_CF_FETCH_ENABLED", "false".into()),
    ]
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

/// Builds the worker (scripts/build.sh, the [build] command of wrangler.toml) with no time limit and
/// its output shown, so that the readiness timeout of `wrangler dev` covers only its start: on two busy
/// cores a cold release build alone can take longer than any sensible start-up bound.
fn build(root: &Path, env: &[(&'static str, OsString)]) -> Result<(), String> {
    eprintln!("e2e: building the worker (scripts/build.sh)");
    let started = Instant::now();
    let status = Command::new(root.join("scripts/build.sh"))
        .current_dir(root)
        .envs(env.iter().cloned())
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run scripts/build.sh: {e}"))?;
    if !status.success() {
        return Err(format!("scripts/build.sh failed ({status})"));
    }
    eprintln!("e2e: worker built in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// wrangler.toml without its [build] section, with paths made absolute, written into `run_dir`:
/// wrangler dev then serves the bundle built above instead of rebuilding at start.
fn config_without_build(root: &Path, run_dir: &Path) -> Result<PathBuf, String> {
    let src = std::fs::read_to_string(root.join("wrangler.toml")).map_err(|e| format!("wrangler.toml: {e}"))?;
    let mut out = String::new();
    let mut in_build = false;
    let (mut saw_main, mut saw_migrations) = (false, false);
    for line in src.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_build = t == "[build]";
        }
        if in_build {
            continue;
        }
        if let Some(rest) = t.strip_prefix("main = \"") {
            out.push_str(&format!("main = \"{}/{}\n", root.display(), rest));
            saw_main = true;
        } else if let Some(rest) = t.strip_prefix("migrations_dir = \"") {
            out.push_str(&format!("migrations_dir = \"{}/{}\n", root.display(), rest));
            saw_migrations = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !(saw_main && saw_migrations) {
        return Err("wrangler.toml: expected `main = \"...\"` and `migrations_dir = \"...\"` lines".into());
    }
    let path = run_dir.join("wrangler.toml");
    std::fs::write(&path, out).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

impl WranglerDev {
    /// Builds the worker, applies the D1 migrations into a fresh state dir under `run_dir`, starts
    /// wrangler dev on the built bundle and waits until it answers HTTP.
    pub fn start(
        root: &Path,
        run_dir: &Path,
        origin_url: &str,
        test_origin_url: &str,
        admin_token: &str,
    ) -> Result<Self, String> {
        let wrangler = root.join("node_modules/.bin/wrangler");
        if !wrangler.exists() {
            return Err(format!("{} is missing: run ./scripts/setup.sh", wrangler.display()));
        }
        let state_dir = run_dir.join("state");
        std::fs::create_dir_all(&state_dir).map_err(|e| format!("cannot create {}: {e}", state_dir.display()))?;
        let mut env = tool_env(root);
        // A dev registry of this run's own: the peer instance (cases/feed.rs) finds this one's
        // Durable Object there, and no other wrangler on the machine can answer for it.
        env.push(("WRANGLER_REGISTRY_PATH", run_dir.join("registry").into()));
        build(root, &env)?;
        let config = config_without_build(root, run_dir)?;

        eprintln!("e2e: applying D1 migrations into {}", state_dir.display());
        let out = Command::new(&wrangler)
            .args(["d1", "migrations", "apply", "DB", "--local", "--config"])
            .arg(&config)
            .arg("--persist-to")
            .arg(&state_dir)
            .current_dir(root)
            .envs(env.iter().cloned())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", wrangler.display()))?;
        if !out.status.success() {
            return Err(format!(
                "`wrangler d1 migrations apply` failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let spec = PeerSpec {
            root: root.to_owned(),
            run_dir: run_dir.to_owned(),
            wrangler,
            config,
            state_dir,
            env,
            vars: vec![
                format!("ORIGIN_URL:{origin_url}"),
                format!("TEST_ORIGIN_URL:{test_origin_url}"),
                format!("ADMIN_TOKEN:{admin_token}"),
                "KEYWARD_CONFORMANCE:1".into(),
                format!("ORIGIN_SIGNING_SECRET:{}", crate::SIGNING_SECRET),
            ],
        };
        spec.launch("wrangler", &spec.config, &[])
    }

    /// What a second instance of this worker needs (cases/feed.rs).
    pub fn peer_spec(&self) -> PeerSpec {
        self.spec.clone()
    }

    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn d1(&self) -> LocalD1 {
        self.d1.clone()
    }

    fn fail(&self, msg: String) -> String {
        format!(
            "{msg}\n--- wrangler dev log, last lines ({}) ---\n{}",
            self.log_path.display(),
            tail_of_file(&self.log_path, LOG_TAIL_LINES)
        )
    }

    /// Polls until wrangler dev answers any HTTP response.
    fn wait_ready(&mut self) -> Result<(), String> {
        let timeout_s = match std::env::var("KEYWARD_E2E_READY_TIMEOUT_S") {
            Ok(v) => v
                .parse()
                .map_err(|_| format!("KEYWARD_E2E_READY_TIMEOUT_S={v:?} is not a number"))?,
            Err(_) => DEFAULT_READY_TIMEOUT_S,
        };
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(5))
            .redirects(0)
            .build();
        let started = Instant::now();
        let url = format!("{}/health", self.base_url);
        loop {
            match agent.get(&url).call() {
                Ok(_) | Err(ureq::Error::Status(..)) => {
                    eprintln!("e2e: wrangler dev ready after {:.1} s", started.elapsed().as_secs_f64());
                    return Ok(());
                }
                Err(ureq::Error::Transport(_)) => {}
            }
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    return Err(self.fail(format!("wrangler dev exited ({status}) before answering")));
                }
                Ok(None) => {}
                Err(e) => return Err(self.fail(format!("cannot poll the wrangler process: {e}"))),
            }
            if started.elapsed() > Duration::from_secs(timeout_s) {
                return Err(self.fail(format!(
                    "wrangler dev did not answer within {timeout_s} s (KEYWARD_E2E_READY_TIMEOUT_S)"
                )));
            }
            sleep(Duration::from_millis(500));
        }
    }

    /// Kills wrangler's process group once this process is gone, in case destructors never run.
    fn spawn_watchdog(&self) -> Option<Child> {
        let script = r#"while kill -0 "$0" 2>/dev/null && kill -0 -- "-$1" 2>/dev/null; do sleep 1; done
if kill -0 -- "-$1" 2>/dev/null; then
  kill -TERM -- "-$1"; sleep 15; kill -KILL -- "-$1" 2>/dev/null
fi"#;
        let spawned = Command::new("bash")
            .args([
                "-c",
                script,
                &std::process::id().to_string(),
                &self.child.id().to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0) // out of the terminal's foreground group: Ctrl-C must not kill it first
            .spawn();
        match spawned {
            Ok(child) => Some(child),
            Err(e) => {
                eprintln!("e2e: warning: no watchdog for wrangler dev (cannot run bash: {e})");
                None
            }
        }
    }

    /// SIGTERM to the process group, up to 15 s for it to go away, then SIGKILL.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let pgid = self.child.id();
        if signal_group(pgid, SIGTERM) {
            let deadline = Instant::now() + STOP_GRACE;
            loop {
                let _ = self.child.try_wait(); // reap wrangler itself so the group can empty
                if !signal_group(pgid, 0) {
                    break;
                }
                if Instant::now() > deadline {
                    eprintln!("e2e: wrangler dev ignored SIGTERM for {STOP_GRACE:?}: SIGKILL");
                    signal_group(pgid, SIGKILL);
                    break;
                }
                sleep(Duration::from_millis(100));
            }
        }
        let _ = self.child.wait();
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

impl Drop for WranglerDev {
    fn drop(&mut self) {
        self.stop();
    }
}
