//! `oxtail setup` trusting its Codex hooks through the real `codex app-server`
//! (Codex 0.169 from `../shared/realclients`, installed under
//! `~/.cache/oxtail-realclients` by its install.sh). Skipped, saying so, when
//! that Codex is not installed. HOME lives under `CARGO_TARGET_TMPDIR`, not
//! `/tmp`, because Codex refuses to start helpers below the temp dir.

mod setup_support;

use serde_json::Value;
use setup_support::{Home, NO_REAL_CODEX, ok, real_codex};

#[test]
fn setup_trusts_exactly_oxtails_codex_hooks_and_doctor_sees_it() {
    let Some(codex) = real_codex() else {
        eprintln!("{NO_REAL_CODEX}");
        return;
    };
    let codex = codex.display().to_string();
    let h = Home::new_in(env!("CARGO_TARGET_TMPDIR"));
    // A foreign hook that must stay untrusted.
    h.write(
        ".codex/hooks.json",
        "{\"hooks\": {\"Stop\": [{\"hooks\": [{\"type\": \"command\", \"command\": \"/their/stop\"}]}]}}\n",
    );
    let env = [("OXTAIL_CODEX_BIN", codex.as_str())];
    let out = ok(&h.oxtail_env(&["setup"], &env));
    assert!(out.contains("trusted oxtail's"), "{out}");
    // config.toml did not exist before this setup: no backup of a file setup
    // itself just created, and none listed.
    assert!(
        h.backups_of(".codex/config.toml").is_empty(),
        "{:?}",
        h.backups()
    );
    assert!(!out.contains("backup ~/.codex/config.toml"), "{out}");

    let toml = h.read(".codex/config.toml");
    let trusted: Vec<&str> = toml
        .lines()
        .filter(|l| l.starts_with("[hooks.state."))
        .collect();
    assert_eq!(trusted.len(), 3, "{toml}");
    assert!(trusted.iter().all(|l| l.contains("hooks.json:")), "{toml}");
    assert!(
        !trusted.iter().any(|l| l.contains(":stop:0:0")),
        "the foreign Stop hook (group 0) must not be trusted: {toml}"
    );
    assert_eq!(toml.matches("trusted_hash = \"sha256:").count(), 3);

    let doctor = h.oxtail_env(&["doctor", "--json"], &env);
    let v: Value = serde_json::from_slice(&doctor.stdout).unwrap();
    let trust = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "codex_trust")
        .unwrap();
    assert_eq!(trust["status"], "ok", "{v:#}");

    // Idempotent: nothing more to trust, config.toml untouched, no new backup.
    let backups = h.backups().len();
    let out = ok(&h.oxtail_env(&["setup"], &env));
    assert!(out.contains("already trusted"), "{out}");
    assert_eq!(h.read(".codex/config.toml"), toml);
    assert_eq!(h.backups().len(), backups);

    // A config.toml the user had and setup did not otherwise change gets one
    // backup before Codex writes trust into it.
    let untrusted: String = toml.split("\n[hooks.state]").next().unwrap().to_string();
    h.write(".codex/config.toml", &untrusted);
    let out = ok(&h.oxtail_env(&["setup"], &env));
    assert!(out.contains("trusted oxtail's"), "{out}");
    let kept = h.backups_of(".codex/config.toml");
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(h.read(&kept[0]), untrusted);

    // Uninstall takes the trust records with the entries; the foreign hook stays.
    ok(&h.oxtail_env(&["uninstall"], &env));
    let after = h.read(".codex/config.toml");
    assert!(
        !after.contains("hooks.state") && !after.contains("oxtail"),
        "{after}"
    );
    assert!(h.read(".codex/hooks.json").contains("/their/stop"));
}
