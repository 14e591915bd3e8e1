from buildflow.cli import run

run()
