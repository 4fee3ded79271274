"""placeholder"""
from typing import Any
import argparse
def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """placeholder"""
