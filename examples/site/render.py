"""Render a text page: the first line becomes a heading, the rest one paragraph."""

import html
import sys

source, target = sys.argv[1], sys.argv[2]
with open(source, encoding="utf-8") as handle:
    lines = handle.read().strip().splitlines() or [""]
title, body = lines[0], " ".join(line.strip() for line in lines[1:])
with open(target, "w", encoding="utf-8") as handle:
    handle.write(f"<h2>{html.escape(title)}</h2>\n<p>{html.escape(body)}</p>\n")
