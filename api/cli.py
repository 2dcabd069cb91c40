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

from api.planning import PlanOptions, parse_balance, parse_weights, plan_window
from models import InputErrors, load_paths
from optimizer import Plan, PlanInvalidError, SolveConfig
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
    soft = terms.get("terms", {}).get("soft", {}).get("detail", {})
    if soft:
        greedy_soft = base.get("terms", {}).get("soft", {}).get("detail", {})
        s.add_row("soft", f"node preferences {soft['node']}, pod (anti-)affinity {soft['pod']}, "
                          f"ScheduleAnyway spread {soft['spread']} (greedy {greedy_soft.get('node')}, "
                          f"{greedy_soft.get('pod')}, {greedy_soft.get('spread')})")
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
    result = _solve_errors(lambda: plan_window(inv, PlanOptions(
        time_limit=time_limit, workers=workers, seed=seed, strategy=strategy.value, profile=profile,
        weights=parse_weights(weight or []), profiles_file=profiles, balance=parse_balance(balance),
        term_gap=term_gap, term_bounds=term_bounds, preemption=not no_preemption, pdb=pdb.value,
        log_search=verbose)))
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
                "status", "hint", "solve s"):
        t.add_column(col, justify="right")
    for r in rows:
        t.add_row(str(r["window"]), str(r["agents"]), str(r["new"]), str(r["carried"]),
                  str(r["aged"]), str(r["placed"]), str(r["greedy_placed"]), str(r["unplaced"]),
                  r["status"], str(r.get("hint")), f"{r['solve_seconds']:.3f}")
    out.print(t)
    placed = sum(r["placed"] for r in rows)
    out.print(f"placed {placed} of {len(inv.pending)} agents; every window verified: "
              f"{all(r['verified'] for r in rows)}")
    if binder is not None:
        counts = binder.outbox.counts()
        out.print(f"binder ({sink}): " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        ev = binder.outbox.eviction_counts()
        out.print("evictions (issued before the bindings they make room for): "
                  + ", ".join(f"{k} {v}" for k, v in sorted(ev.items()))
                  + (f"; {counts['evicted']} bound agent(s) preempted by a later window"
                     if counts.get("evicted") else ""))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(
        help="Address to listen on (default 127.0.0.1); other than loopback only with an API token.")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8080).", min=0, max=65535)
                    ] = None,
    db: Annotated[str | None, typer.Option(
        help="Plans and binder outbox: a SQLite path or a database URL (default $AGENTPLACE_DB or "
             "./agentplace.db).")] = None,
    sink: Annotated[str | None, typer.Option(
        help="Where ?bind=true bindings go: dry-run (default), jsonl:PATH, or kubernetes.")] = None,
    config: Annotated[Path | None, typer.Option(
        help="YAML settings file (default $AGENTPLACE_CONFIG); the API token may be set there.")] = None,
) -> None:
    """Run the HTTP optimize service (POST /v1/optimize, docs at /docs)."""
    from api.serve import ServeError, run_server

    try:
        run_server(config=config, host=host, port=port, db=db, sink=sink)
    except (InputErrors, ServeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _solve_errors(fn: Any, *also: type[Exception]) -> Any:
    """Run fn; input, config (and `also`) and verification errors become exit codes 2 / 3."""
    try:
        return fn()
    except (InputErrors, ConfigError, *also) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except PlanInvalidError as exc:
        typer.echo(f"internal error: plan failed verification: {exc}", err=True)
        raise typer.Exit(3) from None


def _pct(util: dict[str, float] | None, res: str) -> str:
    return "-" if not util or res not in util else f"{100 * util[res]:.1f}%"


def _whatif_table(r: dict[str, Any]) -> None:
    s, c = r["summary"], r["summary"]["counts"]
    b, a = s["baseline"], s["scenario"]
    cur = r.get("currency") or ""
    t = Table(title=f"What-if {r['scenario']['name']}: baseline vs scenario")
    for col in ("", "baseline", "scenario"):
        t.add_column(col, justify="left" if not col else "right")
    for key in ("status", "verified", "nodes", "placed", "unplaced", "preempted", "placed_priority",
                "spend_per_hour", "tokens_per_hour", "solve_seconds"):
        t.add_row(key.replace("_", " ") + (f" ({cur})" if key == "spend_per_hour" and cur else ""),
                  str(b[key]), str(a[key]))
    out.print(t)
    for line in r["scenario"]["changes"]:
        out.print(f"  {line}", highlight=False)
    out.print(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in c.items()), highlight=False)
    sections = (
        ("Newly unplaced", r["newly_unplaced"], ("agent", "was_on", "reason")),
        ("Evictions", r["evictions"], ("pod", "node", "fate", "node_after", "reason")),
        ("Newly preempted", r["preemptions"]["newly_preempted"], ("pod", "node", "agent", "priority")),
        ("No longer preempted", r["preemptions"]["no_longer_preempted"], ("pod", "node", "agent")),
        ("Newly placed", r["newly_placed"], ("agent", "node")),
        ("Added agents", r["added_agents"], ("agent", "node", "reason")),
        ("Moves", r["moves"], ("agent", "from", "to")),
    )
    for title, rows, cols in sections:
        if not rows:
            continue
        u = Table(title=f"{title} ({len(rows)})")
        for col in cols:
            u.add_column(col, overflow="fold")
        for x in rows[:25]:
            u.add_row(*(str(x.get(col)) if x.get(col) is not None else "-" for col in cols))
        if len(rows) > 25:
            u.add_row(f"… {len(rows) - 25} more (-o json for all)", *[""] * (len(cols) - 1))
        out.print(u)
    tt = Table(title="Tenants (running + placed agents)")
    for col in ("tenant", "agents", "tokens/h", f"spend/h {cur}".strip()):
        tt.add_column(col, justify="right" if col != "tenant" else "left")
    for x in r["tenants"]:
        be, af = x["before"], x["after"]
        tt.add_row(x["name"], f"{be['agents']} → {af['agents']}",
                   f"{be['tokens_per_hour']:,} → {af['tokens_per_hour']:,}",
                   f"{be['spend_per_hour']} → {af['spend_per_hour']}")
    out.print(tt)
    zt = Table(title="Utilisation per zone (requested / allocatable)")
    for col in ("zone", "nodes", "cpu", "memory", "nvidia.com/gpu"):
        zt.add_column(col, justify="right" if col != "zone" else "left")
    for z in r["zones"]:
        be, af = z["before"], z["after"]
        zt.add_row(z["name"], f"{(be or {}).get('nodes', 0)} → {(af or {}).get('nodes', 0)}",
                   *(f"{_pct(be, res)} → {_pct(af, res)}" for res in ("cpu", "memory", "nvidia.com/gpu")))
    out.print(zt)
    for w in r["warnings"]:
        err.print(f"[yellow]warning:[/yellow] {w}", highlight=False)


@app.command()
def whatif(
    filename: Files,
    scenario: Annotated[Path, typer.Option("--scenario", "-s", help="A Scenario YAML file.")],
    output: Annotated[Output, typer.Option("-o", "--output")] = Output.table,
    plot: Annotated[Path | None, typer.Option(
        help="Write a PNG of utilisation per zone and node, before/after.")] = None,
    time_limit: Annotated[float, typer.Option(help="Solver time limit per plan, seconds.",
                                              min=0.01)] = 10.0,
    workers: Annotated[int, typer.Option(help="CP-SAT search workers.", min=1)] = 2,
    seed: Annotated[int, typer.Option(help="Solver random seed.")] = 0,
    profile: Annotated[str | None, typer.Option(help="Objective profile (both plans).")] = None,
    plans: Annotated[bool, typer.Option(
        "--plans", help="With -o json|yaml, also include both full plans.")] = False,
    no_preemption: Annotated[bool, typer.Option(
        "--no-preemption", help="Never evict running pods (both plans).")] = False,
) -> None:
    """Plan the cluster as given and as the scenario changes it; print the difference."""
    from models.scenario import load_scenario
    from optimizer.whatif import run_whatif

    inv = _load(filename)
    sc = _solve_errors(lambda: load_scenario(scenario))
    cfg = SolveConfig(time_limit=time_limit, workers=workers, seed=seed, profile=profile,
                      preemption=not no_preemption)
    result = _solve_errors(lambda: run_whatif(inv, sc, cfg, include_plans=plans))
    if output is Output.table:
        _whatif_table(result)
    else:
        _dump(result, output)
    if plot is not None:
        from api.plots import plot_whatif

        err.print(f"plot written to {plot_whatif(result, plot)}", highlight=False)


@app.command()
def sweep(
    filename: Files,
    scenarios: Annotated[Path, typer.Option(
        "--scenarios", help="Directory of Scenario YAML files (read recursively).")],
    ray_address: Annotated[str | None, typer.Option(
        help="Ray cluster: 'local' (default: a local runtime on this machine's cores), 'auto' "
             "(the running cluster) or an address. Ray is the optional 'ray' extra.")] = None,
    pool: Annotated[bool, typer.Option(
        "--pool", help="Use a local process pool even when Ray is installed.")] = False,
    processes: Annotated[int | None, typer.Option(
        help="Process pool size (default: cores / --workers).", min=1)] = None,
    table: Annotated[Path, typer.Option(
        "--out", help="Results table: .csv, or .parquet (needs pyarrow).")] = Path("sweep-results.csv"),
    plot: Annotated[Path | None, typer.Option(help="Write a summary PNG.")] = None,
    time_limit: Annotated[float, typer.Option(help="Solver time limit per plan, seconds.",
                                              min=0.01)] = 5.0,
    workers: Annotated[int, typer.Option(help="CP-SAT workers per scenario.", min=1)] = 1,
    seed: Annotated[int, typer.Option(help="Solver random seed.")] = 0,
    profile: Annotated[str | None, typer.Option(help="Objective profile (scenarios may override).")
                       ] = None,
    output: Annotated[Output, typer.Option("-o", "--output")] = Output.table,
) -> None:
    """Run every scenario of a directory as a what-if against one cluster, in parallel."""
    from rich.progress import Progress

    from optimizer.sweep import load_scenarios, run_sweep, write_table

    inv = _load(filename)
    found = _solve_errors(lambda: load_scenarios(scenarios))
    cfg = SolveConfig(time_limit=time_limit, workers=workers, seed=seed, profile=profile)
    with Progress(console=err, transient=True, disable=output is not Output.table) as bar:
        task = bar.add_task("scenarios", total=len(found))
        result = _solve_errors(lambda: run_sweep(
            inv, found, cfg, ray_address=ray_address, pool=pool, processes=processes,
            progress=lambda: bar.update(task, advance=1)))
    for note in result.notes:
        err.print(f"[yellow]note:[/yellow] {note}", highlight=False)
    path = _solve_errors(lambda: write_table(result.rows, table))
    if plot is not None:
        from api.plots import plot_sweep

        err.print(f"plot written to {plot_sweep(result.rows, plot)}", highlight=False)
    if output is not Output.table:
        _dump({"backend": result.backend, "baseline": result.baseline, "table": str(path),
               "rows": result.rows}, output)
        return
    t = Table(title=f"{len(result.rows)} scenarios on {result.backend}; baseline "
                    f"{result.baseline['placed']} placed, {result.baseline['unplaced']} unplaced")
    heads = {"scenario": "scenario", "status": "status", "placed": "placed", "unplaced": "unpl.",
             "newly_unplaced": "new unpl.", "moved": "moved", "evicted": "evicted",
             "spend_per_hour": "spend/h", "spend_delta": "Δ spend/h", "max_zone_cpu": "max zone cpu",
             "task_seconds": "s"}
    cols = tuple(heads)
    for col in cols:
        t.add_column(heads[col], justify="left" if col == "scenario" else "right",
                     overflow="fold")
    for r in result.rows:
        if r.get("error"):
            t.add_row(r["scenario"], f"[red]error[/red]: {r['error']}", *[""] * (len(cols) - 2))
        else:
            t.add_row(*(str(r.get(c)) for c in cols))
    out.print(t)
    failed = sum(1 for r in result.rows if r.get("error"))
    out.print(f"table written to {path}" + (f"; {failed} scenario(s) failed" if failed else ""),
              highlight=False)
    if failed:
        raise typer.Exit(3)


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
    result = _solve_errors(lambda: run_replan(inv, cfg), ReplanError)
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
    from api.binding import make_sink
    from optimizer.binder import Binder, Outbox

    try:
        target = make_sink(sink)
    except ValueError as exc:
        typer.echo(f"error: --{exc}", err=True)
        raise typer.Exit(2) from None
    return Binder(Outbox(db), target)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
