"""atheris harness for the client parser target (see targets.py and runner.py)."""

from runner import main

if __name__ == "__main__":
    main("client_parser")
