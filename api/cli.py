"""`agentplace` command line: plan and explain a window of pending agents."""

from __future__ import annotations

import json
import logging
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from models import InputErrors, load_paths
from optimizer import Plan, PlanInvalidError, SolveConfig, optimize
from optimizer.config import ConfigError
from optimizer.explain import explain_pending
from optimizer.snapshot import build_snapshot

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Batch placement of AI agents onto Kubernetes clusters with CP-SAT.")
out = Console()
err = Console(stderr=True)


class Output(StrEnum):
    json = "json"
    yaml = "yaml"
    table = "table"


class Strategy(StrEnum):
    LeastAllocated = "LeastAllocated"
    MostAllocated = "MostAllocated"


class PdbMode(StrEnum):
    hard = "hard"
    best_effort = "best-effort"


Files = Annotated[list[Path], typer.Option(
    "-f", "--filename", help="File, directory or '-' (stdin) with kubectl JSON/YAML; repeatable.")]


def _load(files: list[Path]) -> Any:
    try:
        return load_paths(files)
    except InputErrors as exc:
        # plain text: error lines must not be re-wrapped, scripts grep them
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _dump(data: Any, fmt: Output) -> None:
    if fmt is Output.yaml:
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False))
    else:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")


def _plan_table(plan: Plan) -> None:
    by_node: dict[str, list[str]] = {}
    for p in plan.placements:
        by_node.setdefault(p.node, []).append(p.agent)
    t = Table(title=f"Placements ({len(plan.placements)})")
    t.add_column("node")
    t.add_column("agents", justify="right")
    t.add_column("examples", overflow="fold")
    for node, agents in sorted(by_node.items()):
        t.add_row(node, str(len(agents)), ", ".join(agents[:3]) + (" …" if len(agents) > 3 else ""))
    out.print(t)
    if plan.evictions:
        e = Table(title=f"Evictions ({len(plan.evictions)})")
        for col in ("pod", "priority", "node", "for agent"):
            e.add_column(col)
        e.add_column("reason", overflow="fold")
        for x in plan.evictions:
            e.add_row(x.pod, str(x.priority), x.node, x.agent or "", x.reason)
        out.print(e)
    if plan.unplaced:
        u = Table(title=f"Unplaced ({len(plan.unplaced)})")
        u.add_column("agent")
        u.add_column("reason", overflow="fold")
        for x in plan.unplaced:
            u.add_row(x.agent, x.reason)
        out.print(u)
    terms = plan.objective_terms
    base = plan.baseline
    s = Table(title="Summary", show_header=False)
    s.add_row("status", plan.status)
    s.add_row("verified", "yes" if plan.verified else "NO")
    s.add_row("placed", f"{terms.get('placed_agents')} (greedy {base.get('placed_agents')})")
    s.add_row("placed priority", f"{terms.get('placed_priority')} (greedy {base.get('placed_priority')})")
    s.add_row("evictions", f"{terms.get('evictions', 0)} of priority sum "
                           f"{terms.get('evicted_priority', 0)} (greedy {base.get('evictions', 0)})")
    s.add_row("profile", str(terms.get("profile")))
    for name, t in terms.get("terms", {}).items():
        greedy = base.get("terms", {}).get(name, {}).get("value")
        b = t.get("bound") or {}
        alone = f"; alone: best {b['alone_best']}, bound {b['alone_bound']}" if "alone_bound" in b else ""
        s.add_row(f"{name} (weight {t['weight']})",
                  f"{t['value']} of {t['max']} (greedy {greedy}{alone}): {t['description']}")
    cost = terms.get("terms", {}).get("cost", {}).get("detail", {})
    if cost.get("pricing_table"):
        s.add_row("cost", f"{cost['spend_per_hour']} {cost['currency']}/h for "
                          f"{cost['tokens_per_hour']} tokens/h = {cost['cost_per_million_tokens']} "
                          f"{cost['currency']} per 1M tokens (table {cost['pricing_table']}, assumed)")
    s.add_row("objective / bound / gap", f"{plan.objective} / {plan.bound} / {plan.gap}")
    m = plan.model
    s.add_row("model", f"{m.get('candidate_pairs')} candidate pairs, {m.get('variables')} variables, "
                       f"{m.get('constraints')} constraints ({m.get('agent_classes')} agent classes)")
    s.add_row("timings (s)", ", ".join(f"{k} {v:.3f}" for k, v in plan.timings.items()))
    out.print(s)
    for w in plan.warnings:
        err.print(f"[yellow]warning:[/yellow] {w}", highlight=False)


@app.command()
def plan(
    filename: Files,
    output: Annotated[Output, typer.Option("-o", "--output")] = Output.table,
    time_limit: Annotated[float, typer.Option(help="Solver time limit, seconds.", min=0.01)] = 10.0,
    workers: Annotated[int, typer.Option(help="CP-SAT search workers.", min=1)] = 2,
    strategy: Annotated[Strategy, typer.Option(
        help="Tie-break after placed priority: balance or pack.")] = Strategy.LeastAllocated,
    seed: Annotated[int, typer.Option(help="Solver random seed.")] = 0,
    profile: Annotated[str | None, typer.Option(
        help="Objective profile: balanced, cost, pack, or one from --profiles.")] = None,
    weight: Annotated[list[str] | None, typer.Option(
        help="Override one term's weight, TERM=VALUE (balance, pack, cost, soft, preemption); "
             "repeatable.")] = None,
    profiles: Annotated[Path | None, typer.Option(help="A profiles YAML file.")] = None,
    balance: Annotated[list[str] | None, typer.Option(
        help="Resources the balance term counts, RESOURCE=INT_WEIGHT (default cpu=1, memory=1); "
             "repeatable.")] = None,
    term_bounds: Annotated[bool, typer.Option(
        "--term-bounds", help="Also bound each weighted term alone (extra solves, priority held).")
    ] = False,
    term_gap: Annotated[float, typer.Option(
        help="Stop when proven within this fraction of a weight-1.0 term's swing "
             "(placed priority is always exact).", min=0.0)] = 0.02,
    no_preemption: Annotated[bool, typer.Option(
        "--no-preemption", help="Never evict running pods (default: lower-priority running pods "
        "may be preempted, decided in the same solve).")] = False,
    pdb: Annotated[PdbMode, typer.Option(
        help="PodDisruptionBudgets on evictions: hard (never exceed disruptionsAllowed) or "
        "best-effort (kube: exceed only when nothing else works, fewest excess).")] = PdbMode.hard,
    verbose: Annotated[bool, typer.Option(
        "-v", "--verbose", help="Log model size and solver progress.")] = False,
) -> None:
    """Place the pending agents found in the input onto its nodes, as one CP-SAT batch."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr)
    inv = _load(filename)
    weights = {}
    for item in weight or []:
        term, sep, value = item.partition("=")
        try:
            weights[term] = float(value) if sep else float("nan")
        except ValueError:
            weights[term] = float("nan")
        if weights[term] != weights[term]:
            typer.echo(f"error: --weight {item!r}: expected TERM=NUMBER", err=True)
            raise typer.Exit(2)
    balance_resources = {"cpu": 1, "memory": 1}
    if balance:
        balance_resources = {}
        for item in balance:
            res, sep, value = item.partition("=")
            if not sep or not res or not value.isdigit():
                typer.echo(f"error: --balance {item!r}: expected RESOURCE=INTEGER", err=True)
                raise typer.Exit(2)
            balance_resources[res] = int(value)
    cfg = SolveConfig(time_limit=time_limit, workers=workers, seed=seed, strategy=strategy.value,
                      preemption=not no_preemption, pdb_mode=pdb.value, log_search=verbose,
                      profile=profile, weights=weights, profiles_file=profiles, term_gap=term_gap,
                      term_bounds=term_bounds, balance_resources=balance_resources)
    try:
        result = optimize(inv, cfg)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except PlanInvalidError as exc:
        typer.echo(f"internal error: plan failed verification: {exc}", err=True)
        raise typer.Exit(3) from None
    if output is Output.table:
        _plan_table(result)
    else:
        _dump(result.to_dict(), output)


@app.command()
def explain(
    filename: Files,
    output: Annotated[Output, typer.Option("-o", "--output")] = Output.table,
) -> None:
    """kube-scheduler's Filter verdict for every pending agent against the cluster as given."""
    snap = build_snapshot(_load(filename))
    results = explain_pending(snap)
    if output is not Output.table:
        _dump({"agents": [r.to_dict() for r in results]}, output)
        return
    t = Table(title=f"Pending agents ({len(results)}) against {snap.num_nodes} nodes")
    t.add_column("agent")
    t.add_column("feasible", justify="right")
    t.add_column("message", overflow="fold")
    for r in results:
        t.add_row(r.agent, str(len(r.feasible)), r.message)
    out.print(t)


@app.command()
def run(
    filename: Files,
    max_agents: Annotated[int, typer.Option(help="Agents per window at most.", min=1)] = 200,
    max_age: Annotated[float, typer.Option(
        help="Seconds of arrivals (creationTimestamp) per window at most.", min=0.0)] = 2.0,
    output: Annotated[Output, typer.Option("-o", "--output")] = Output.table,
    time_limit: Annotated[float, typer.Option(help="Solver time limit per window, seconds.",
                                              min=0.01)] = 5.0,
    workers: Annotated[int, typer.Option(help="CP-SAT search workers.", min=1)] = 2,
    profile: Annotated[str | None, typer.Option(help="Objective profile.")] = None,
    bind: Annotated[bool, typer.Option(
        "--bind", help="Hand each window's verified plan to the durable binder.")] = False,
    db: Annotated[str | None, typer.Option(
        help="Binder outbox: a SQLite path or a database URL (default $AGENTPLACE_DB or "
             "./agentplace.db).")] = None,
    sink: Annotated[str, typer.Option(
        help="Where bindings go: dry-run, jsonl:PATH, or kubernetes (kubeconfig / in-cluster).")
    ] = "dry-run",
    run_id: Annotated[str | None, typer.Option(
        help="Stable id for this replay: re-running with it resumes instead of re-binding.")] = None,
) -> None:
    """Replay the input's pending agents as a stream of rolling windows (arrival order)."""
    from rich.progress import Progress

    from optimizer.windows import WindowConfig, cut_windows, replay

    inv = _load(filename)
    binder = _binder(db, sink) if bind else None
    cfg = WindowConfig(max_agents=max_agents, max_age=max_age,
                       solve=SolveConfig(time_limit=time_limit, workers=workers, profile=profile))
    expected = len(cut_windows(inv.pending, max_agents, max_age))
    rows = []
    try:
        with Progress(console=err, transient=True, disable=output is not Output.table) as bar:
            task = bar.add_task("windows", total=expected)
            for result in replay(inv, cfg, binder, run_id):
                rows.append(result.figures())
                bar.update(task, advance=1, total=max(expected, len(rows)))
    except (ConfigError, PlanInvalidError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2 if isinstance(exc, ConfigError) else 3) from None
    if output is not Output.table:
        _dump({"windows": rows}, output)
        return
    t = Table(title=f"{len(rows)} windows, {len(inv.pending)} agents")
    for col in ("window", "agents", "new", "carried", "aged", "placed", "greedy", "unplaced",
                "status", "solve s"):
        t.add_column(col, justify="right")
    for r in rows:
        t.add_row(str(r["window"]), str(r["agents"]), str(r["new"]), str(r["carried"]),
                  str(r["aged"]), str(r["placed"]), str(r["greedy_placed"]), str(r["unplaced"]),
                  r["status"], f"{r['solve_seconds']:.3f}")
    out.print(t)
    placed = sum(r["placed"] for r in rows)
    out.print(f"placed {placed} of {len(inv.pending)} agents; every window verified: "
              f"{all(r['verified'] for r in rows)}")
    if binder is not None:
        counts = binder.outbox.counts()
        out.print(f"binder ({sink}): " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


@app.command()
def replan(
    filename: Files,
    max_moves: Annotated[int, typer.Option(help="Moves of running agents at most (hard).")] = 10,
    max_moves_per_node: Annotated[int | None, typer.Option(
        help="Moves out of any one node at most (hard).")] = None,
    max_moves_per_namespace: Annotated[int | None, typer.Option(
        help="Moves within any one namespace at most (hard).")] = None,
    max_targets: Annotated[int | None, typer.Option(
        help="Candidate target nodes per movable agent (default: all on small windows).")] = None,
    output: Annotated[Output, typer.Option("-o", "--output")] = Output.table,
    profile: Annotated[str | None, typer.Option(
        help="Objective profile: balanced, cost, pack, or one from --profiles.")] = None,
    move_weight: Annotated[float, typer.Option(
        help="Weight of the disruption term (1 per move + minutes of lost work).")] = 0.1,
    time_limit: Annotated[float, typer.Option(help="Solver time limit, seconds.", min=0.01)] = 10.0,
    workers: Annotated[int, typer.Option(help="CP-SAT search workers.", min=1)] = 2,
    seed: Annotated[int, typer.Option(help="Solver random seed.")] = 0,
    profiles: Annotated[Path | None, typer.Option(help="A profiles YAML file.")] = None,
) -> None:
    """Re-optimise running and pending agents together: an ordered migration plan (dry run)."""
    from optimizer.replan import ReplanConfig, ReplanError
    from optimizer.replan import replan as run_replan

    for name, value in (("--max-moves", max_moves), ("--max-moves-per-node", max_moves_per_node),
                        ("--max-moves-per-namespace", max_moves_per_namespace),
                        ("--max-targets", max_targets)):
        if value is not None and value < 0:
            typer.echo(f"error: {name} {value}: must be an integer >= 0", err=True)
            raise typer.Exit(2)
    if move_weight < 0:
        typer.echo(f"error: --move-weight {move_weight}: must be >= 0", err=True)
        raise typer.Exit(2)
    inv = _load(filename)
    cfg = ReplanConfig(
        max_moves=max_moves, max_moves_per_node=max_moves_per_node,
        max_moves_per_namespace=max_moves_per_namespace, move_weight=move_weight,
        max_targets=max_targets,
        solve=SolveConfig(time_limit=time_limit, workers=workers, seed=seed, profile=profile,
                          profiles_file=profiles))
    try:
        result = run_replan(inv, cfg)
    except (ConfigError, ReplanError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except PlanInvalidError as exc:
        typer.echo(f"internal error: plan failed verification: {exc}", err=True)
        raise typer.Exit(3) from None
    if output is not Output.table:
        _dump(result.to_dict(), output)
        return
    _replan_table(result)


def _replan_table(result: Any) -> None:
    from optimizer.replan import summary

    m = Table(title=f"Migration plan ({len(result.moves)} moves, {len(result.steps)} steps)")
    for col in ("step", "action", "agent", "from", "to"):
        m.add_column(col)
    m.add_column("why", overflow="fold")
    why = {x.agent: "; ".join(x.why) for x in result.moves}
    places = [s for s in result.steps if s.action == "place"]
    for s in result.steps:
        if s.action != "place":
            m.add_row(str(s.step), s.action, s.agent, s.source or "", s.target or "",
                      why.get(s.agent, s.note) if s.action in ("move", "evict") else s.note)
    if places:  # listed one by one in -o json
        m.add_row(f"{places[0].step}-{places[-1].step}", "place", f"{len(places)} pending agents",
                  "", "see Placements", "bound last, against the final state")
    out.print(m)
    _plan_table(result.plan)
    s = Table(title="Re-plan", show_header=False)
    fig = summary(result)
    s.add_row("moves", f"{fig['moves']} ({fig['make_before_break']} make-before-break, "
                       f"{fig['break_before_make']} break-before-make)")
    s.add_row("freed nodes", ", ".join(fig["freed_nodes"]) or "none")
    for name, b in result.budgets.items():
        s.add_row(name, f"{b['used']} of {b['limit']}")
    if result.spend_per_hour:
        sp = result.spend_per_hour
        s.add_row("spend of moved-or-kept agents", f"{sp['before']} -> {sp['after']} "
                                                   f"{sp['currency']}/h (assumed prices)")
    s.add_row("pinned running pods", str(fig["pinned"]))
    s.add_row("every step verified", "yes" if result.steps_verified else "NO")
    out.print(s)


def _binder(db: str | None, sink: str) -> Any:
    from optimizer.binder import Binder, DryRunSink, JsonlSink, KubernetesSink, Outbox

    if sink == "dry-run":
        target: Any = DryRunSink()
    elif sink.startswith("jsonl:") and len(sink) > len("jsonl:"):
        target = JsonlSink(sink[len("jsonl:"):])
    elif sink == "kubernetes":
        target = KubernetesSink()
    else:
        typer.echo(f"error: --sink {sink!r}: expected dry-run, jsonl:PATH or kubernetes", err=True)
        raise typer.Exit(2)
    return Binder(Outbox(db), target)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
