"""Memory figures of a harness-owned RabbitMQ node, read in one call on the node.

One Erlang expression (MEMORY_EXPR) garbage-collects every process, reads the VM's total,
then every queue's memory and message bytes (what `rabbitmqctl list_queues` shows, here
without the garbage a queue process had not collected yet), and returns the lot as one
flat string. It goes through `erl_call` (erlang-base,
which rabbitmq-server depends on): a C client that joins the node's distribution in
about 10 ms. `rabbitmqctl` boots an Erlang VM per call, 0.6 s on an idle 2-core machine
and 1.5-2 s during a run for the two calls a reading took, so a memory cell spent 3-4 s
on its two readings; without erl_call the same expression goes through `rabbitmqctl eval`.

Stdlib only: the driver reads it in the backend's environment.
"""

from __future__ import annotations

import glob
import re
import shutil
import subprocess
from typing import Any

TIMEOUT_S = 60.0
# "<total>;<name> <messages> <memory> <message_bytes_ram> <message_bytes_persistent>;..."
# A quorum queue gives '' for the two byte counts (its messages live in its Raft log).
MEMORY_EXPR = (
    '[erlang:garbage_collect(P) || P <- erlang:processes()], '
    'Total = erlang:memory(total), '
    'Rows = [io_lib:format("~s ~w ~w ~w ~w;", [N | [proplists:get_value(K, I) || K <- '
    '[messages, memory, message_bytes_ram, message_bytes_persistent]]]) || '
    'I <- rabbit_amqqueue:info_all(<<"/">>, [name, messages, memory, message_bytes_ram, '
    'message_bytes_persistent]), {resource, _, queue, N} <- [proplists:get_value(name, I)]], '
    'lists:flatten([integer_to_list(Total), ";" | Rows]).'
)
RESULT = re.compile(r'"([^"]*)"')  # the returned string, as either client prints it


def erl_call_binary() -> str | None:
    return shutil.which("erl_call") or next(
        iter(sorted(glob.glob("/usr/lib/erlang/lib/erl_interface-*/bin/erl_call"))), None)


def node_command(control: list[str]) -> tuple[list[str], str | None]:
    """(command, its stdin) that evaluates MEMORY_EXPR on the node `control` administers.

    `control` is RabbitMQ.control(): [*run_as, "env", *settings, rabbitmqctl, "-n", node,
    "-q"]; erl_call runs as the same user with the same settings (the node's Erlang
    cookie, its private epmd port)."""
    binary = erl_call_binary()
    at = control.index("-n")
    if binary is None:
        return [*control, "eval", MEMORY_EXPR], None
    return [*control[:at - 1], binary, "-n", control[at + 1], "-e"], MEMORY_EXPR + "\n"


def read_node(control: list[str]) -> tuple[str | None, str]:
    """(the expression's result, or None; how it was read or why it failed)."""
    cmd, stdin = node_command(control)
    client = "erl_call" if stdin is not None else "rabbitmqctl eval"
    try:
        done = subprocess.run(cmd, input=stdin, capture_output=True, text=True,
                              timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None, f"{client} did not answer within {TIMEOUT_S:.0f} s"
    found = RESULT.search(done.stdout)
    answered = stdin is None or done.stdout.lstrip().startswith("{ok")  # erl_call: {ok, ...}
    if done.returncode or found is None or not answered:
        return None, f"{client} failed: {(done.stderr or done.stdout).strip()[:200]}"
    return found.group(1), client


NOT_GIVEN = ("''", "undefined")  # a figure the queue type does not report


def parse(result: str, queue: str | None) -> dict[str, Any]:
    """The reading: bytes (VM total), and with `queue` the summed figures of the queues
    whose name holds it (Dramatiq adds <queue>.DQ and <queue>.XQ). An answer it cannot
    read gives None figures with the reason, never an exception (the driver reads it)."""
    total, *rows = [part for part in result.split(";") if part] or [""]
    if not total.isdigit():
        return {"bytes": None, "unreadable": f"no VM total in the node's answer {result[:80]!r}"}
    reading: dict[str, Any] = {"bytes": int(total)}
    if queue is None:
        return reading
    mine = [fields for row in rows
            if len(fields := row.rsplit(" ", 4)) == 5 and queue in fields[0]]
    if any(value in NOT_GIVEN for fields in mine for value in fields[3:]):
        reading["queue_method"] = ("a quorum queue: RabbitMQ gives no message bytes for it, "
                                   "so the figure is the Erlang VM's total")
        return reading
    try:
        reading.update(
            queue_bytes=sum(int(f[2]) + int(f[3]) for f in mine),
            disk_bytes=sum(int(f[4]) for f in mine),
            queue_messages=sum(int(f[1]) for f in mine), queue_count=len(mine))
    except ValueError:
        reading.update(queue_bytes=None,
                       unreadable=f"a queue row the harness cannot read in {result[:120]!r}")
    return reading
