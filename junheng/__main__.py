try:
    from junheng.cli import run
except KeyboardInterrupt:  # Ctrl-C while the modules load: no traceback, as at any later point
    raise SystemExit(130) from None

run()
