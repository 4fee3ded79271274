"""Run one fuzz target under atheris (libFuzzer): ``python fuzz/fuzz_<target>.py [flags]``.

libFuzzer flags pass through, e.g. ``-max_total_time=600`` (seconds) or ``-runs=500``.
With no corpus directory given, the target's committed seed corpus
``fuzz/corpus/<target>/`` is copied to a scratch directory first, so new inputs found
during a run do not pile up in the repository (pass the corpus directory yourself to
grow it). Crashing inputs are written to the current directory as ``crash-<sha1>``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(target: str) -> None:
    import atheris

    with atheris.instrument_imports(include=["pynats", "targets"]):
        sys.path.insert(0, str(HERE))
        import targets

    check = targets.TARGETS[target]
    argv = list(sys.argv)
    if not any(not arg.startswith("-") for arg in argv[1:]):
        scratch = Path(tempfile.mkdtemp(prefix=f"pynats-fuzz-{target}-"))
        shutil.copytree(HERE / "corpus" / target, scratch, dirs_exist_ok=True)
        argv.append(str(scratch))
    atheris.Setup(argv, check)
    atheris.Fuzz()
