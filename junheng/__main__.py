from junheng.cli import run

run()
