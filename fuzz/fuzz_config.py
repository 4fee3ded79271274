"""atheris harness for the config target (see targets.py and runner.py)."""

from runner import main

if __name__ == "__main__":
    main("config")
