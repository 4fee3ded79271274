"""atheris harness for the route parser target (see targets.py and runner.py)."""

from runner import main

if __name__ == "__main__":
    main("route_parser")
