"""``crucible-ray cluster up|down|status``: a real multi-node Ray cluster on this machine."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from crucible_ray.cli.common import EXIT_FAILED, err_console
from crucible_ray.cluster import local
from crucible_ray.cluster.processes import node_alive

app = typer.Typer(help="Start, stop and inspect the local multi-node Ray cluster.",
                  no_args_is_help=True, rich_markup_mode="markdown")  # fmt: skip
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


@app.command()
def up(
    executors: Annotated[
        int | None,
        typer.Option(min=1, help="executor nodes (default 2); a running cluster grows to this"),
    ] = None,
    slots: Annotated[
        int | None, typer.Option(min=1, help="sandbox slots per executor node (default: cores)")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Start a head node and N executor nodes (token authentication on), then the dispatcher.

    A running cluster is grown to N executor nodes; it is never shrunk in place (that would
    stop nodes running evaluations): the message says what to run instead."""
    try:
        state = local.up(executors=executors, slots=slots)
        local.connect()
        from crucible_ray.execution import ExecutionClient

        stats = ExecutionClient().stats()
    except local.ClusterError as exc:
        err_console.print(f"[red]cluster up failed:[/] {exc}", highlight=False)
        raise typer.Exit(EXIT_FAILED) from None
    running = len(local.live_executors(state))
    if as_json:
        typer.echo(json.dumps({"address": state.address, "executors": running,
                               "slots": state.slots, "nodes": state.nodes}, indent=2))  # fmt: skip
    else:
        err_console.print(
            f"cluster up at {state.address}: {running} executor node(s) x "
            f"{state.slots} slots; dispatcher admitting up to {stats['admission_limit']}"
        )


@app.command()
def down() -> None:
    """Stop exactly the processes `cluster up` started and remove leftover sandboxes."""
    try:
        stopped = local.down()
    except local.ClusterError as exc:
        err_console.print(str(exc))
        raise typer.Exit(EXIT_FAILED) from None
    err_console.print(f"stopped {stopped} node(s)")


@app.command()
def status(as_json: JsonOpt = False) -> None:
    """Nodes with their labels and slots, executor actors, the queue and admission limit."""
    try:
        report = _status()
    except local.ClusterError as exc:
        err_console.print(str(exc))
        raise typer.Exit(EXIT_FAILED) from None
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    console = Console()
    nodes = Table("node", "role", "alive", "sandbox slots", "executor actors (busy/slots)")
    for node in report["nodes"]:
        actors = [a for a in report["dispatcher"]["executors"] if a["node_id"] == node["node_id"]]
        load = ", ".join(f"{a['busy']}/{a['slots']}" for a in actors) or "-"
        nodes.add_row(node["node_id"][:12], node["role"], str(node["alive"]),
                      str(node["sandbox_slots"] or "-"), load)  # fmt: skip
    console.print(nodes)
    d = report["dispatcher"]
    console.print(
        f"running {d['running']}, queued {d['queued']}, admission limit {d['admission_limit']}"
        f", executors {len(d['executors'])}"
    )


@app.command()
def metrics(
    as_json: JsonOpt = False,
    contains: Annotated[str, typer.Option(help="only series whose name contains this")] = "",
) -> None:
    """crucible's metrics from every node of the local cluster, summed (no Prometheus needed)."""
    import httpx

    from crucible_ray.monitoring import rows, scrape_all

    try:
        state = local.ClusterState.load()
    except local.ClusterError as exc:
        err_console.print(str(exc))
        raise typer.Exit(EXIT_FAILED) from None
    targets = [f"127.0.0.1:{n['metrics_port']}" for n in state.nodes if node_alive(n)]
    try:
        found = rows(scrape_all(targets), contains)
    except httpx.HTTPError:
        err_console.print("a node's metrics port did not answer; see crucible-ray cluster status")
        raise typer.Exit(EXIT_FAILED) from None
    if as_json:
        typer.echo(json.dumps([row._asdict() for row in found], indent=2))
        return
    table = Table("series", "labels", "value")
    for row in found:
        table.add_row(
            row.name, ", ".join(f"{k}={x}" for k, x in row.labels.items()), f"{row.value:g}"
        )
    Console().print(table)


def _status() -> dict[str, Any]:
    from crucible_ray.topology import ROLE_LABEL, SLOT_RESOURCE

    local.connect()
    import ray

    from crucible_ray.execution import ExecutionClient

    nodes = [
        {
            "node_id": n["NodeID"],
            "alive": n["Alive"],
            "role": n.get("Labels", {}).get(ROLE_LABEL, "-"),
            "sandbox_slots": n["Resources"].get(SLOT_RESOURCE),
        }
        for n in ray.nodes()
    ]
    return {"nodes": nodes, "dispatcher": ExecutionClient().stats()}
