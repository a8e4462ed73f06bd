#!/usr/bin/env bash
# oxtail SessionStart hook (beyond the original): records which session this
# Claude Code process is on now, ~/.oxtail/clients/<client pid>.json. /clear
# and /resume give the session a new id while the process and its MCP server
# keep running; the server follows the record (the old id stays an alias).
#
# Runs on every source (startup, resume, clear, compact); only a changed id
# matters to the server. Prints NOTHING (SessionStart output would reach the
# model), never blocks for long, always exits 0.

exec >/dev/null 2>&1
[ -n "${HOME:-}" ] || exit 0
[ -t 0 ] && exit 0
# Claude Code only: Codex starts a new MCP server for every thread, so one
# Codex process can have several servers and a record would mislead them.
[ "${CLAUDECODE:-}" = 1 ] || [ -n "${CLAUDE_CODE_SESSION_ID:-}" ] || exit 0
case "${BASH_SOURCE[0]}" in
  */*) _oxh_d=${BASH_SOURCE[0]%/*} ;;
  *) _oxh_d=. ;;
esac
. "$_oxh_d/oxtail-hook-common.sh" || exit 0

# The whole payload (a few hundred bytes), bounded in time.
OXH_HEAD=
IFS= read -r -d '' -t 5 OXH_HEAD || :
_oxh_re='^[[:space:]]*[{][[:space:]]*"session_id"[[:space:]]*:[[:space:]]*"([A-Za-z0-9_-]+)"'
OXH_AGENT=0
if [[ $OXH_HEAD =~ $_oxh_re ]]; then
  OXH_SID=${BASH_REMATCH[1]}
fi
# Not the first key, or a subagent's payload: the full top-level parse.
case $OXH_HEAD in *'"agent_id"'*) OXH_SID= ;; esac
[ -n "$OXH_SID" ] || oxh_scan_payload </dev/null
[ -n "$OXH_SID" ] && [ "$OXH_AGENT" != 1 ] || exit 0
# Claude Code's env names the same session; when it names another, do not guess.
[ -z "${CLAUDE_CODE_SESSION_ID:-}" ] || [ "$CLAUDE_CODE_SESSION_ID" = "$OXH_SID" ] || exit 0

_oxh_src=unknown
_oxh_re='"source"[[:space:]]*:[[:space:]]*"([a-z_-]+)"'
[[ $OXH_HEAD =~ $_oxh_re ]] && _oxh_src=${BASH_REMATCH[1]}
_oxh_tp=
_oxh_re='"transcript_path"[[:space:]]*:[[:space:]]*"([^"\\]*)"'
[[ $OXH_HEAD =~ $_oxh_re ]] && _oxh_tp=${BASH_REMATCH[1]}

oxh_client_pid ps
oxh_record_client "$_oxh_src" SessionStart "$_oxh_tp"
exit 0
