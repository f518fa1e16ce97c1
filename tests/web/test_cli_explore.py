"""``stridelab explore`` on the command line: bad options exit 2 with one line; binding anything
but loopback warns; the server itself is uvicorn (patched out here, started in test_e2e)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stridelab.cli import main
from stridelab.cli.explore import is_loopback


@pytest.mark.parametrize("argv, words", [
    (["explore", "--port", "http"], "--port"),
    (["explore", "--port", "70000"], "--port"),
    (["explore", "--runs", "/no/such/folder", "--no-browser"], "--runs"),
    (["explore", "--model", "no_such_net", "--no-browser"], "--model"),
])
def test_bad_options_exit_2_with_one_line(argv: list[str], words: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1 and "Traceback" not in err


class FakeServer:
    """Stands in for uvicorn.Server: records the config instead of serving."""

    seen: list[Any] = []

    def __init__(self, config: Any) -> None:
        FakeServer.seen.append(config)
        self.started, self.should_exit = False, True

    def run(self) -> None:
        return None


@pytest.mark.parametrize("host, warns", [("127.0.0.1", False), ("localhost", False),
                                         ("::1", False), ("0.0.0.0", True)])
def test_loopback_by_default_and_a_warning_otherwise(host: str, warns: bool, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    import uvicorn

    monkeypatch.setattr(uvicorn, "Server", FakeServer)
    FakeServer.seen.clear()
    assert main(["explore", "--host", host, "--port", "0", "--no-browser",
                 "--runs", str(tmp_path)]) == 0
    assert ("warning" in capsys.readouterr().err) == warns
    assert FakeServer.seen[0].host == host
    assert main(["explore", "--no-browser"]) == 0
    assert FakeServer.seen[1].host == "127.0.0.1" and FakeServer.seen[1].port == 8000


def test_is_loopback() -> None:
    assert is_loopback("127.0.0.2") and is_loopback("[::1]") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")
