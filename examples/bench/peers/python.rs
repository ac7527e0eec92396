//! The Python peers, run by `examples/peers/peers.py`: `subprocess.run` with the system's
//! python3, and, in a virtualenv this bench makes under `target/`, daemonocle and
//! python-daemon. Every line the script prints for us is a JSON object.

use std::ffi::OsStr;
use std::path::PathBuf;

use deluxe::command::Command;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{Cycles, Facts, Probe};
use crate::stats::Plan;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/peers/peers.py");

/// A Python daemon library measured and probed.
pub struct Library {
    /// The script's name for it, and its Python module.
    pub module: &'static str,
    version: &'static str,
    pub start_figure: &'static str,
    pub stop_figure: &'static str,
    /// Start and stop cycles measured (quick, full): these libraries are slow.
    cycles: (usize, usize),
}

impl Library {
    /// As the table names it: `daemonocle 1.2.3`.
    pub fn name(&self) -> String {
        format!("{} {}", self.module, self.version)
    }

    /// As pip installs it: `daemonocle==1.2.3`.
    fn requirement(&self) -> String {
        format!("{}=={}", self.module, self.version)
    }
}

pub const LIBRARIES: [Library; 2] = [
    Library {
        module: "daemonocle",
        version: "1.2.3",
        start_figure: "start() vs daemonocle's start",
        stop_figure: "stop() vs daemonocle's stop",
        cycles: (2, 5),
    },
    Library {
        module: "python-daemon",
        version: "3.1.2",
        start_figure: "start() vs python-daemon (until its pidfile names it)",
        stop_figure: "stop() vs python-daemon (SIGTERM, pidfd wait)",
        cycles: (5, 21),
    },
];

/// The JSON lines `python` prints running the script with `args` (other lines, the libraries'
/// own output, are skipped); an error when there are none.
fn run<T: DeserializeOwned>(
    python: &Command,
    args: impl IntoIterator<Item = impl AsRef<OsStr>>,
) -> Result<Vec<T>, String> {
    let args: Vec<_> = args
        .into_iter()
        .map(|arg| arg.as_ref().to_owned())
        .collect();
    let output = python
        .call(
            std::iter::once(OsStr::new(SCRIPT))
                .chain(args.iter().map(std::ffi::OsString::as_os_str)),
        )
        .map_err(|error| error.to_string())?;
    let lines = String::from_utf8_lossy(&output)
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).map_err(|error| format!("{line}: {error}")))
        .collect::<Result<Vec<T>, String>>()?;
    if lines.is_empty() {
        return Err("the script printed nothing".into());
    }
    Ok(lines)
}

/// The system's python3.
pub struct Python {
    system: Command,
}

impl Python {
    pub fn find() -> Result<Self, String> {
        let system = Command::new("python3").map_err(|error| error.to_string())?;
        Ok(Self { system })
    }

    /// `subprocess.run(["/bin/true"])`: microseconds per call, a sample a round.
    pub fn spawn(&self, plan: Plan) -> Result<Vec<f64>, String> {
        #[derive(Deserialize)]
        struct Round {
            us: f64,
        }
        let calls = plan.pick(30, 200).to_string();
        let rounds: Vec<Round> = run(&self.system, ["spawn", &calls, &plan.rounds.to_string()])?;
        Ok(rounds.into_iter().map(|round| round.us).collect())
    }

    /// A virtualenv with the daemon libraries, made once under `target/`.
    pub fn venv(&self) -> Result<Venv, String> {
        let target = std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
            .ok_or("cannot find the target directory")?;
        let venv = target.join("bench-peers-venv");
        let python = venv.join("bin").join("python");
        if !python.exists() {
            self.system
                .call([OsStr::new("-m"), OsStr::new("venv"), venv.as_os_str()])
                .map_err(|error| format!("python3 -m venv failed: {error}"))?;
        }
        let pip = Command::new(venv.join("bin").join("pip")).map_err(|error| error.to_string())?;
        let requirements: Vec<String> = LIBRARIES.iter().map(Library::requirement).collect();
        pip.call(
            ["install", "--quiet"]
                .into_iter()
                .chain(requirements.iter().map(String::as_str)),
        )
        .map_err(|error| format!("pip install {} failed: {error}", requirements.join(" ")))?;
        let work = std::env::temp_dir().join(format!("deluxe-bench-peers-{}", std::process::id()));
        std::fs::create_dir_all(&work).map_err(|error| error.to_string())?;
        Ok(Venv {
            python: Command::new(python).map_err(|error| error.to_string())?,
            work,
        })
    }
}

/// The virtualenv's python, and a directory for the daemons' pidfiles (removed on drop).
pub struct Venv {
    python: Command,
    work: PathBuf,
}

impl Venv {
    /// Start and stop cycles of an idle daemon.
    pub fn cycles(&self, library: &Library, plan: Plan) -> Result<Cycles, String> {
        #[derive(Deserialize)]
        struct Cycle {
            start: f64,
            stop: f64,
        }
        let count = plan.pick(library.cycles.0, library.cycles.1).to_string();
        let work = self.work.as_os_str();
        let lines: Vec<Cycle> = run(
            &self.python,
            [
                OsStr::new("cycle"),
                OsStr::new(library.module),
                OsStr::new(&count),
                work,
            ],
        )?;
        Ok(Cycles {
            starts: lines.iter().map(|cycle| cycle.start).collect(),
            stops: lines.iter().map(|cycle| cycle.stop).collect(),
        })
    }

    /// What the library does in the situations deluxe's tests cover.
    pub fn probe(&self, library: &Library) -> Result<Probe, String> {
        let dir = self.work.join(format!("probe-{}", library.module));
        std::fs::create_dir_all(&dir).map_err(|error| error.to_string())?;
        let mut lines: Vec<Facts> = run(
            &self.python,
            [
                OsStr::new("probe"),
                OsStr::new(library.module),
                dir.as_os_str(),
            ],
        )?;
        Ok(Probe {
            library: library.name(),
            facts: lines.remove(0),
        })
    }
}

impl Drop for Venv {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.work);
    }
}
