"""placeholder"""
import argparse
from typing import Any


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """placeholder"""
