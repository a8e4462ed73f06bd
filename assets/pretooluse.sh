#!/usr/bin/env bash
# oxtail PreToolUse hook: delivers this session's queued peer messages into
# the agent's context before a tool call
# ({"hookSpecificOutput":{"hookEventName":"PreToolUse","additionalContext":…}}).
#
# Runs before EVERY tool call, so the common case (nothing queued anywhere)
# uses bash builtins only and does not even read stdin. Subagent tool calls
# (payload with a top-level agent_id) deliver nothing: the mail stays queued
# for the main agent. Always exits 0; prints nothing or one JSON line.

[ -n "${HOME:-}" ] || exit 0
[ -t 0 ] && exit 0

# Fast path: is any mailbox at all non-empty?
for _oxh_f in "$HOME"/.oxtail/mailboxes/*.jsonl; do
  if [ -s "$_oxh_f" ]; then
    case "${BASH_SOURCE[0]}" in
      */*) _oxh_d=${BASH_SOURCE[0]%/*} ;;
      *) _oxh_d=. ;;
    esac
    . "$_oxh_d/oxtail-hook-common.sh" || exit 0

    # Session id from the first key (builtins). Then the renderer parses the
    # rest of the payload itself (agent_id check) under the lock.
    oxh_read_head
    if [ -n "$OXH_SID" ]; then
      oxh_candidates
      [ ${#OXH_PIDS[@]} -gt 0 ] || exit 0
      . "$OXH_LIB/oxtail-hook-deliver.sh" && oxh_deliver pretooluse payload
      exit 0
    fi
    # session_id is not the first key: full parse first.
    oxh_scan_payload
    [ "$OXH_AGENT" = 1 ] && exit 0
    oxh_candidates
    [ ${#OXH_PIDS[@]} -gt 0 ] || exit 0
    . "$OXH_LIB/oxtail-hook-deliver.sh" && oxh_deliver pretooluse
    exit 0
  fi
done
exit 0
