"""`bflow status` (stale tasks, first reason each) and `bflow explain` (every reason): both print
the reasons staleness.decide returned, nothing else, on the project as a build would find it.
`bflow status --outputs` answers another question, without records: see `outputcheck`."""

from __future__ import annotations

from collections.abc import Mapping

from buildflow import engine
from buildflow.commands import invocation_dir
from buildflow.errors import EXIT_FAILED, EXIT_OK
from buildflow.model import Project
from buildflow.staleness import ReasonKind
from buildflow.words import counted, say


def run(project: Project, *, targets: list[str], check: bool) -> int:
    """Without targets, every task, not only the default ones: `status --check` answers
    whether anything at all is stale."""
    project, state, gone = engine.as_built(project)
    names = engine.selected(project, targets, invocation_dir()) if targets \
        else project.graph.topological(project.tasks)
    # a build skips a task whose `when` fails, stale or not: so does --check
    decisions, skips = engine.decided(project, state, names, gone=gone)
    stale = {name: d for name, d in decisions.items() if d.stale}
    skipped = 0
    for name in [n for n in decisions if n in skips]:
        say(f"{name}: skipped: {skips[name]}")
        stale.pop(name, None)
        skipped += 1
    for name, decision in stale.items():
        say(f"{name}: {decision.reasons[0]}")
    if skipped and not stale:  # a build would skip them: not "all up to date"
        say(f"bflow: {len(decisions) - skipped} up to date, {skipped} skipped by `when`")
    elif not stale:
        say("bflow: " + ("1 task is up to date" if len(decisions) == 1 else
                         f"all {len(decisions)} tasks are up to date"))
    return EXIT_FAILED if stale and check else EXIT_OK


def outputs(flowfile: str, *, targets: list[str], overrides: Mapping[str, str],
            check: bool) -> int:
    """Outputs that differ from what a build of the tracked files gives. A task that fails in
    that build leaves the question open, so that fails even without `check`."""
    from buildflow import outputcheck

    comparison = outputcheck.compare(flowfile, targets, overrides, invocation_dir())
    for failure in comparison.failures:
        say(f"{failure.task}: failed in a build of a copy of what git's index holds: "
            f"{failure.reason}")
        say("".join(f"  {line}\n" for line in failure.output.splitlines()), end="")
    if comparison.failures:
        return EXIT_FAILED
    for mismatch in comparison.mismatches:
        say(f"{mismatch.path}: {mismatch.problem}")
    if not comparison.mismatches:
        compared = comparison.compared
        if compared == 0:
            say("bflow: no output to compare (none that git tracks or a build makes is not "
                "ignored)")
        else:
            say("bflow: " + ("1 output matches" if compared == 1 else
                             f"all {compared} outputs match") + " what a build gives")
    return EXIT_FAILED if comparison.mismatches and check else EXIT_OK


def explain(project: Project, *, target: str) -> int:
    project, state, gone = engine.as_built(project)
    names = project.graph.select([target], project.root, invocation_dir())
    if not names:
        say(f"{target}: no instances: its foreach matches no file")
    decisions, skips = engine.decided(project, state,
                                      engine.selected(project, names, invocation_dir()),
                                      explain=True, gone=gone)
    for name in names:
        if name in decisions and decisions[name].after:
            say(f"{name}: {decisions[name].reasons[0]}")  # nothing more is known yet
            continue
        if project.tasks[name].is_group:  # stale as what a build of it would run
            needed = [n for n in project.graph.closure([name]) if n in decisions]
            stale = [n for n in needed if decisions[n].stale and n not in skips]
            skipped = [f"{n} ({skips[n]})" for n in needed if n in skips]
            say(f"{name}: a group task; {counted(len(stale), 'task')} it needs "
                + ("is" if len(stale) == 1 else "are") + " stale"
                + ("" if not stale else ": " + ", ".join(stale))
                + ("" if not skipped else "; a build skips " + ", ".join(skipped)))
            continue
        decision = decisions[name]
        failing = skips.get(name)
        say(f"{name}: {'stale' if decision.stale else 'up to date'}"
            + (f"; a build skips it: {failing}" if failing else ""))
        for reason in decision.reasons:
            # An upstream that will run is only the messenger: name its own first reason too.
            why = f" ({decisions[reason.subject].reasons[0]})" \
                if reason.kind is ReasonKind.UPSTREAM_PENDING else ""
            say(f"  - {reason}{why}")
    return EXIT_OK
