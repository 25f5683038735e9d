from buildsys.cli import run

run()
