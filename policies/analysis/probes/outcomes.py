"""What a probe observes, and how: curl's exit codes, the decision table, the probe's shell program.

Cilium drops silently, so a drop is a *connect timeout*. The probe tells it apart from a DNS
failure or a refused connection (neither proves a policy drop); ``OUTCOMES`` is that decision
table and ``probe_script`` is generated from it. Policies apply asynchronously, so a probe
retries until it observes what it expects or runs out of attempts.
"""

from __future__ import annotations

import shlex
from typing import Literal

from policies.config import PROJECT

PROBE_LABEL = f"{PROJECT}/probe"
PROBE_ANNOTATION = f"{PROJECT}/probe"
PROBE_UID = 100  # curl_user in curlimages/curl; numeric so runAsNonRoot can be verified

CONNECT_TIMEOUT = 5
MAX_TIME = 10
ATTEMPTS = 6
INTERVAL = 5
DEADLINE = 300

Observed = Literal["connected", "timeout", "dns-failure", "refused", "error"]

# curl exit code -> what it tells about the connection (curl's libcurl-errors list).
OUTCOMES: dict[int, Observed] = {
    0: "connected",  # a response
    52: "connected",  # CURLE_GOT_NOTHING: the server accepted, then closed
    56: "connected",  # CURLE_RECV_ERROR: accepted, then reset
    8: "connected",  # CURLE_WEIRD_SERVER_REPLY: a non-HTTP server answered
    6: "dns-failure",  # CURLE_COULDNT_RESOLVE_HOST
    7: "refused",  # CURLE_COULDNT_CONNECT: refused, or rejected (a Service without endpoints)
    28: "timeout",  # CURLE_OPERATION_TIMEDOUT: a drop, if it never connected
}
EXPECTED_OBSERVATION: dict[str, Observed] = {"allow": "connected", "deny": "timeout"}


def outcome(curl_exit: int, time_connect: str) -> Observed:
    """What one curl run observed. A timeout after connecting is a connection, not a drop."""
    observed = OUTCOMES.get(curl_exit, "error")
    if observed == "timeout" and _connected(time_connect):
        return "connected"
    return observed


def _connected(time_connect: str) -> bool:
    try:
        return float(time_connect.replace(",", ".")) > 0
    except ValueError:
        return False


def agrees(expect: str, observed: str) -> bool:
    return EXPECTED_OBSERVATION[expect] == observed


def probe_script() -> str:
    """The probe's shell program (POSIX sh + curl), generated from ``OUTCOMES``.

    ``CHECKS`` holds one check per line, ``flow|expect|host|port``; the checks run in parallel
    (each in its own subshell), each prints one result line, and the Job fails when any check
    observed something other than its expectation. No file is written (the root file system
    is read-only).
    """
    cases = "\n".join(
        f"      {code}) observed={obs} ;;" for code, obs in sorted(OUTCOMES.items()) if obs != "timeout"
    )
    expected = " ".join(f"{k}={v}" for k, v in EXPECTED_OBSERVATION.items())
    return f"""set -u
set -f
# expectations: {expected}
check() {{
  flow=$1 expect=$2 host=$3 port=$4
  case "$expect" in allow) want=connected ;; deny) want=timeout ;; *) echo "bad expectation $expect"; return 2 ;; esac
  start=$(date +%s)
  n=0
  while :; do
    n=$((n + 1))
    tc=$(curl -s -o /dev/null -w '%{{time_connect}}' --connect-timeout "$CONNECT_TIMEOUT" --max-time "$MAX_TIME" "http://$host:$port/")
    code=$?
    case "$code" in
{cases}
      28) case "$tc" in ""|0|0.000000|0,000000) observed=timeout ;; *) observed=connected ;; esac ;;
      *) observed=error ;;
    esac
    if [ "$observed" = "$want" ] || [ "$n" -ge "$ATTEMPTS" ]; then break; fi
    sleep "$INTERVAL"
  done
  secs=$(( $(date +%s) - start ))
  echo "zero-trust-aks probe: flow=\\"$flow\\" expect=$expect observed=$observed curl_exit=$code attempts=$n seconds=$secs"
  [ "$observed" = "$want" ]
}}
newline='
'
pids=""
IFS=$newline
for line in $CHECKS; do
  IFS='|'
  set -- $line
  IFS=$newline
  [ "$#" -eq 4 ] || continue
  check "$1" "$2" "$3" "$4" &
  pids="$pids $!"
done
IFS=' '
status=0
for pid in $pids; do wait "$pid" || status=1; done
exit "$status"
"""


def parse_results(log: str) -> dict[str, dict[str, str]]:
    """Every result line of a probe Job's log, by flow (``observed``, ``seconds``...)."""
    out = {}
    for line in log.splitlines():
        if line.startswith("zero-trust-aks probe: "):
            fields = {k: v.strip('"') for k, v in (w.split("=", 1) for w in shlex.split(line.split(": ", 1)[1]))}
            out[fields.get("flow", "")] = fields
    return out
