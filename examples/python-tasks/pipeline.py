"""A small data pipeline as bflow Python tasks: each CSV file of sales becomes a JSON summary,
and the summaries become one SVG bar chart. Standard library only.

Each function takes the `ctx` bflow gives a `py` task: its paths are relative to the project
root, where it runs; what it prints (or writes to `ctx.log`) is the task's log.
"""

from __future__ import annotations

import csv
import json
from xml.sax.saxutils import escape

from buildflow import Context

BAR_WIDTH, GAP, HEIGHT, MARGIN = 60, 20, 240, 40


def summarize(ctx: Context) -> None:
    """One CSV file -> {"year", "total", "regions": {region: total}}."""
    regions: dict[str, float] = {}
    with open(ctx.input, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        regions[row["region"]] = regions.get(row["region"], 0.0) + float(row["amount"])
    summary = {"year": ctx.item.rsplit("-", 1)[-1].removesuffix(".csv") if ctx.item else "",
               "total": round(sum(regions.values()), 2),
               "regions": {name: round(total, 2) for name, total in sorted(regions.items())}}
    with open(ctx.output, "w") as out:
        json.dump(summary, out, indent=2, sort_keys=True)
        out.write("\n")
    print(f"{ctx.input}: {len(rows)} rows, total {summary['total']:.2f}", file=ctx.log)


def chart(ctx: Context) -> None:
    """The summaries -> one bar per year, titled by the TITLE var."""
    summaries = []
    for path in ctx.inputs:
        with open(path) as handle:
            summaries.append(json.load(handle))
    summaries.sort(key=lambda summary: summary["year"])
    top = max((summary["total"] for summary in summaries), default=1) or 1
    width = MARGIN * 2 + len(summaries) * (BAR_WIDTH + GAP)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{HEIGHT + 2 * MARGIN}" font-family="sans-serif" font-size="12">',
             f'<text x="{MARGIN}" y="{MARGIN // 2}" font-size="16">'
             f'{escape(ctx.vars["TITLE"])}</text>']
    for index, summary in enumerate(summaries):
        bar = round(HEIGHT * summary["total"] / top)
        x, y = MARGIN + index * (BAR_WIDTH + GAP), MARGIN + HEIGHT - bar
        parts += [f'<rect x="{x}" y="{y}" width="{BAR_WIDTH}" height="{bar}" fill="#4a7ab5">'
                  f'<title>{summary["total"]:.2f}</title></rect>',
                  f'<text x="{x + BAR_WIDTH // 2}" y="{MARGIN + HEIGHT + 16}" '
                  f'text-anchor="middle">{escape(summary["year"])}</text>']
    parts.append("</svg>\n")
    with open(ctx.output, "w") as out:
        out.write("\n".join(parts))
    print(f"{len(summaries)} bars, the highest {top:.2f}", file=ctx.log)
