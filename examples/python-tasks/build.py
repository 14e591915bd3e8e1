"""The pipeline of the Flowfile beside it, declared in Python: `python build.py` builds it,
`python build.py graph`, `status`, `watch` and the rest work as `bflow` does, on the same
state (the tasks, their actions and their records are the same)."""

import buildflow
from pipeline import chart, summarize

project = buildflow.Project(vars={"TITLE": "Sales by year"})
project.task(foreach="data/*.csv", outputs="build/summary/{stem}.json",
             description="One JSON summary per CSV file")(summarize)
project.task(inputs="build/summary/*.json", outputs="build/chart.svg",
             description="The summaries as an SVG bar chart")(chart)
project.add("publish", cmd="cp {input} {output}", inputs="build/chart.svg",
            outputs="public/chart.svg", when={"env": "CI"},
            description="Copy the chart where the site is published from, on CI only")

if __name__ == "__main__":
    project.main()
