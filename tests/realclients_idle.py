#!/usr/bin/env python3
"""The shared real-client harness (../shared/realclients/run.py), with one
addition for idle-wake scenarios: an interactive (TUI) session may stay open
after its typed inputs, so something other than a person can start its next
turn.

Session key (scenario JSON):

    "tui_linger": {"main_requests": N, "timeout_s": T, "settle_s": S}

After the last of `tui_inputs` has finished its turn, the session is kept
open (nothing typed) until the fake model has answered at least N main-agent
requests and the last of them ended a turn (text only) S seconds ago
(default 3), or T seconds passed (default 60); then `/exit` as usual.
Optional `"after_exit_s": X` waits X seconds after `/exit` (once the client
is gone) and records the processes whose command line contains one of
`"survivor_markers"` (`{run_dir}` and `{session_id}` are filled in), e.g. a
hook that outlived its client, in `logs/linger-<id>.json`.

Everything else is the harness unchanged: same arguments, same checks.
Usage: python3 tests/realclients_idle.py <run.py arguments>
"""
import json
import os
import subprocess
import sys
import time

HARNESS = os.environ.get(
    "OXTAIL_REALCLIENTS_HARNESS",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "realclients"),
)
sys.path.insert(0, os.path.abspath(HARNESS))
import run  # noqa: E402  (the harness module)

_original_drive = run.Session.drive_tui


def _last_turn_ended(api):
    if not api:
        return False
    content = api[-1].get("reply", {}).get("content", [])
    return not any(b.get("type") == "tool_use" for b in content)


def _linger(self, deadline):
    spec = self.spec.get("tui_linger") or {}
    want = int(spec.get("main_requests", 0))
    settle = float(spec.get("settle_s", 3))
    until = min(deadline, time.time() + float(spec.get("timeout_s", 60)))
    last_n, last_change = -1, time.time()
    while time.time() < until:
        api = [a for a in run.read_jsonl(self.api_log) if a.get("kind") == "main"]
        if len(api) != last_n:
            last_n, last_change = len(api), time.time()
        elif len(api) >= want and _last_turn_ended(api) and time.time() - last_change >= settle:
            return
        time.sleep(0.2)


def _survivors(markers):
    """Processes whose command line mentions one of `markers`."""
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return [l.strip() for l in out.splitlines()
            if any(m in l for m in markers) and "ps -eo" not in l]


def drive_tui(self, deadline):
    if not self.spec.get("tui_linger"):
        return _original_drive(self, deadline)
    # Play the inputs with the harness's own driver, but hold /exit: the
    # driver types "/exit" through tmux, so we intercept that one call.
    real_tmux = self.tmux
    held = []

    def tmux(*a, check=False):
        if a[:1] == ("send-keys",) and "/exit" in a and not held:
            held.append(True)
            _linger(self, deadline)
            with open(os.path.join(self.logs, f"tui-{self.sid}.linger-screen.txt"), "w") as f:
                f.write(self._pane())
        return real_tmux(*a, check=check)

    self.tmux = tmux
    try:
        after = float(self.spec.get("after_exit_s", 0))
        if after > 0:
            fill = {"run_dir": self.run_dir, "session_id": self.claude_session_id or ""}
            markers = [run.subst(m, fill) for m in self.spec.get("survivor_markers", [])]
            orig_teardown = self.tmux_teardown

            def teardown():
                t0 = time.time()
                gone = None
                while time.time() - t0 < after:
                    if gone is None and self.cli_pid and not os.path.exists(f"/proc/{self.cli_pid}"):
                        gone = time.time()
                    time.sleep(0.2)
                alive = _survivors(markers) if markers else []
                with open(os.path.join(self.logs, f"linger-{self.sid}.json"), "w") as f:
                    json.dump({"after_exit_s": after, "client_gone_at": gone, "checked_at": time.time(),
                               "markers": markers, "survivors": alive}, f, indent=1)
                orig_teardown()

            self.tmux_teardown = teardown
        return _original_drive(self, deadline)
    finally:
        self.tmux = real_tmux


run.Session.drive_tui = drive_tui

if __name__ == "__main__":
    run.main()
