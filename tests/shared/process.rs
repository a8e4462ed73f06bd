//! Process fixtures shared by the test support modules: a live pid to put in
//! registry entries ([`Sleeper`], killed and reaped on drop) and a pid that is
//! certainly dead ([`dead_pid`]).
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};

/// A long-lived helper process: an alive pid for registry fixtures.
pub struct Sleeper(pub Child);

impl Sleeper {
    pub fn new() -> Sleeper {
        Sleeper(
            Command::new("sleep")
                .arg("300")
                .stdin(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A pid that is certainly dead (an exited, reaped child).
pub fn dead_pid() -> u32 {
    let mut c = Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}
