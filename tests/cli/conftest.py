"""A small trained toy run shared by the CLI tests (trained once per session)."""

import pytest

from contrastkit.cli import main


@pytest.fixture(scope="session")
def toy_run(tmp_path_factory):
    """Return the folder of a 12-step SimCLR run on the toy data, evaluated."""
    run_dir = tmp_path_factory.mktemp("cli") / "toy-run"
    code = main(["train", "--data", "toy", "--steps", "12", "--out", str(run_dir), "--quiet"])
    assert code == 0
    return run_dir
