"""atheris harness for the http target (see targets.py and runner.py)."""

from runner import main

if __name__ == "__main__":
    main("http")
