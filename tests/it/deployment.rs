//! The deployment files shipped with the examples are valid for the tools that read them.

use std::process::Command as StdCommand;

use crate::common::{scratch_dir, ticker_binary};

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let analyze = StdCommand::new("systemd-analyze").arg("--version").output();
    if !analyze.is_ok_and(|output| output.status.success()) {
        crate::common::skip(
            "the_systemd_unit_passes_systemd_analyze_verify",
            "needs systemd-analyze (Debian's systemd package); run `bash .ci/run`",
        );
        return;
    }
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/ticker.service"
    ))
    .unwrap();
    assert!(unit.contains("Type=notify"));
    // The unit names the installed binary; point it at the one just built.
    let unit = unit.replace(
        "/usr/local/bin/deluxe-ticker",
        &ticker_binary().display().to_string(),
    );
    let dir = scratch_dir("unit");
    let path = dir.join("deluxe-ticker.service");
    std::fs::write(&path, unit).unwrap();
    let output = StdCommand::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        !stderr.contains("deluxe-ticker.service"),
        "warnings about the unit: {stderr}"
    );
}
