import threading
import time
import urllib.request

import pytest

pytest.importorskip("viser")


def test_view_command_serves_the_page_and_stops(tmp_path, avatar, capsys):
    from anchorsplat.cmd_view import view_command
    from anchorsplat.configs import ViewConfig
    from anchorsplat.gaussians.io import save_avatar

    path = save_avatar(tmp_path / "tiny.anchorsplat", avatar)
    stop = threading.Event()
    config = ViewConfig(avatar=path, port=0, model="baseline")
    thread = threading.Thread(target=view_command, args=(config, stop), daemon=True)
    thread.start()
    deadline = time.perf_counter() + 30
    url = None
    while url is None and time.perf_counter() < deadline:
        out = capsys.readouterr().out
        url = next((word for word in out.split() if word.startswith("http://127.0.0.1:")), None)
        time.sleep(0.05)
    assert url, "the URL was not printed"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert b"<html" in response.read(2000).lower()
    stop.set()
    thread.join(timeout=15)
    assert not thread.is_alive()


def test_view_cli_errors_are_one_line(tmp_path, capsys):
    from anchorsplat.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["view", str(tmp_path / "missing.anchorsplat"), "--port", "0"])
    assert exit_info.value.code == 2
    assert "anchorsplat: error:" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["view", str(tmp_path / "missing.anchorsplat"), "--audio", str(tmp_path / "nope.wav")])
    assert "--audio" in capsys.readouterr().err
