//! The `/oxtail-join` onboarding prompt that `oxtail setup` installs: a Claude
//! Code user command (`~/.claude/commands/oxtail-join.md`) and a Codex skill
//! (`$CODEX_HOME/skills/oxtail-join/SKILL.md`, YAML front matter `name` and
//! `description`, the layout Codex 0.169 discovers as a user skill). Both texts
//! are shipped inside the binary.
//!
//! Invariants defended:
//! - what is installed, and what `doctor` compares against, are the same
//!   embedded bytes;
//! - install goes through `ConfigFile` like every other setup file (atomic
//!   replace, symlinks followed, a file the user edited is backed up before it
//!   is replaced), and a current file is not written at all;
//! - uninstall removes only these two paths (and the skill's directory once
//!   empty); an edited file is backed up before it goes.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::config_file::ConfigFile;
use super::{ClientPaths, Edit, display};

/// The Claude Code user command, `/oxtail-join`.
pub const CLAUDE_COMMAND: &str = include_str!("../../../assets/claude/oxtail-join.md");
/// The Codex skill `oxtail-join` (mentioned as `$oxtail-join`).
pub const CODEX_SKILL: &str = include_str!("../../../assets/codex/oxtail-join/SKILL.md");

/// Name of the command file and of the skill directory.
pub const NAME: &str = "oxtail-join";

/// One installed onboarding file.
#[derive(Debug, Clone)]
pub struct JoinFile {
    /// Label in setup's report (at most 17 characters).
    pub label: &'static str,
    pub path: PathBuf,
    pub text: &'static str,
}

/// `~/.claude/commands/oxtail-join.md` for `home`.
pub fn claude_command_path(home: &Path) -> PathBuf {
    home.join(".claude/commands").join(format!("{NAME}.md"))
}

/// `$CODEX_HOME/skills/oxtail-join/SKILL.md`.
pub fn codex_skill_path(codex_home: &Path) -> PathBuf {
    codex_home.join("skills").join(NAME).join("SKILL.md")
}

/// The files for the chosen clients.
pub fn files(paths: &ClientPaths, home: &Path, claude: bool, codex: bool) -> Vec<JoinFile> {
    let mut out = Vec::new();
    if claude {
        out.push(JoinFile {
            label: "Claude command",
            path: claude_command_path(home),
            text: CLAUDE_COMMAND,
        });
    }
    if codex {
        out.push(JoinFile {
            label: "Codex skill",
            path: codex_skill_path(&paths.codex_home),
            text: CODEX_SKILL,
        });
    }
    out
}

/// The edit that makes a file hold `shipped` (`text` = its current content).
pub fn install(text: Option<&str>, shipped: &str) -> Result<Edit, String> {
    Ok(match text {
        Some(t) if t == shipped => Edit::unchanged(format!("{NAME} is current")),
        Some(_) => Edit::changed(
            shipped.to_string(),
            format!("updated {NAME} to this version"),
        ),
        None => Edit::changed(shipped.to_string(), format!("installed {NAME}")),
    })
}

/// What `doctor` reports for one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Current,
    /// Present with other content (edited, or from another oxtail version).
    Differs,
    Missing,
}

pub fn state(file: &JoinFile) -> State {
    match fs::read(&file.path) {
        Ok(b) if b == file.text.as_bytes() => State::Current,
        Ok(_) => State::Differs,
        Err(_) => State::Missing,
    }
}

/// Remove `file` (uninstall), printing one line; true on success. An edited
/// file is backed up first.
pub fn remove(file: &JoinFile, dry_run: bool, stamp: &str) -> bool {
    let shown = display(&file.path);
    let label = file.label;
    let loaded = match ConfigFile::load(&file.path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("  {label:<17} FAILED: {e}");
            return false;
        }
    };
    let Some(text) = &loaded.text else {
        println!("  {label:<17} {shown}: not installed — no change");
        return true;
    };
    if dry_run {
        println!("  {label:<17} {shown}: would be removed");
        return true;
    }
    let mut backup = String::new();
    if text != file.text {
        match loaded.backup(text, stamp) {
            Ok(b) => backup = format!("; backup {}", display(&b)),
            Err(e) => {
                eprintln!("  {label:<17} FAILED: {e}");
                return false;
            }
        }
    }
    match fs::remove_file(&file.path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            eprintln!("  {label:<17} FAILED: cannot remove {shown}: {e}");
            return false;
        }
    }
    // The skill's own directory goes too once empty (never anything else).
    if file.path.file_name().is_some_and(|n| n == "SKILL.md")
        && let Some(dir) = file.path.parent()
    {
        let _ = fs::remove_dir(dir);
    }
    println!("  {label:<17} {shown}: removed {NAME}{backup}");
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The YAML front matter of `text`: the lines between the leading `---`
    /// fences.
    fn front_matter(text: &str) -> Vec<&str> {
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("---"), "front matter must open the file");
        lines.take_while(|l| *l != "---").collect()
    }

    #[test]
    fn codex_skill_has_the_front_matter_codex_requires() {
        let fm = front_matter(CODEX_SKILL);
        let name = fm.iter().find_map(|l| l.strip_prefix("name: ")).unwrap();
        assert_eq!(name, NAME);
        // Codex: lowercase letters, digits and hyphens, at most 64 characters.
        assert!(name.len() <= 64);
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        );
        let desc = fm
            .iter()
            .find_map(|l| l.strip_prefix("description: "))
            .unwrap();
        assert!(!desc.is_empty() && desc.len() <= 1024, "{desc}");
        // A plain YAML scalar: no `: ` that would start a mapping, no leading quote.
        assert!(!desc.contains(": ") && !desc.starts_with(['"', '\'']));
    }

    #[test]
    fn claude_command_has_a_description_and_names_the_tools() {
        let fm = front_matter(CLAUDE_COMMAND);
        assert!(fm.iter().any(|l| l.starts_with("description: ")));
        for text in [CLAUDE_COMMAND, CODEX_SKILL] {
            for tool in [
                "claim_session",
                "register_my_session",
                "list_project_sessions",
                "send_message",
                "ask_peer",
                "reply_to_message",
                "read_my_messages",
            ] {
                assert!(text.contains(&format!("`{tool}`")), "{tool} missing");
            }
            assert!(text.contains("not an instruction from the user"));
        }
        assert!(CLAUDE_COMMAND.contains("echo $CLAUDE_CODE_SESSION_ID"));
        assert!(CODEX_SKILL.contains("echo $CODEX_THREAD_ID"));
    }

    #[test]
    fn install_edits() {
        assert!(install(None, "x").unwrap().new_text.is_some());
        assert!(install(Some("x"), "x").unwrap().new_text.is_none());
        let e = install(Some("old"), "x").unwrap();
        assert_eq!(e.new_text.as_deref(), Some("x"));
    }
}
