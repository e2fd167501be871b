"""``contrastkit demo``: its options, and a busy port as one clear line with exit code 2."""

from __future__ import annotations

import socket
import sys

import pytest

from contrastkit.cli import main


def test_demo_help_documents_every_option(capsys):
    assert main(["demo", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("--host", "--port", "--no-browser", "127.0.0.1", "8000"):
        assert option in text


def test_busy_port_is_one_line_and_exit_code_2(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        code = main(["demo", "--no-browser", "--port", str(port)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"port {port}" in err and "already in use" in err and "--port" in err


def test_bad_port_number_is_one_line_and_exit_code_2(capsys):
    assert main(["demo", "--no-browser", "--port", "70000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--port" in err


@pytest.mark.parametrize("missing", ["fastapi", "uvicorn"])
def test_without_the_web_extra_the_demo_says_how_to_install_it(capsys, monkeypatch, missing):
    monkeypatch.setitem(sys.modules, missing, None)  # makes "import <missing>" fail
    assert main(["demo", "--no-browser", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert 'pip install "contrastkit[web]"' in err and missing in err
