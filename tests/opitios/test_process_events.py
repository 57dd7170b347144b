"""The supervisord event listener as supervisord runs it: a subprocess speaking the event protocol on
stdin/stdout. A restarted worker reaches the webhook receiver once, a crash loop adds nothing."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from opitios.supervisord_conf import render
from tests.helpers.alerts import Receiver

ROOT = Path(__file__).resolve().parents[2]


def _event(serial: int, name: str, payload: str) -> bytes:
    body = payload.encode()
    header = f"ver:3.0 server:supervisor serial:{serial} pool:alerts poolserial:{serial} eventname:{name} len:{len(body)}\n"
    return header.encode() + body


def _read_line(proc) -> bytes:
    return proc.stdout.readline()


def test_a_restarted_process_alerts_once_through_the_listener(tmp_path):
    receiver = Receiver()
    try:
        secrets = tmp_path / "secrets.yml"
        secrets.write_text(yaml.safe_dump({"alerts": {"urls": [receiver.url]}}))
        env = {**os.environ, "OPITIOS_SECRETS": str(secrets), "OPITIOS_VAR_DIR": str(tmp_path / "var"),
               "OPITIOS_LOG_DIR": str(tmp_path / "logs"), "DJANGO_SETTINGS_MODULE": "opitios.settings.test"}
        env = {k: v for k, v in env.items() if k not in ("DATABASE_URL", "REDIS_URL")}  # file cache of its own var dir
        proc = subprocess.Popen([sys.executable, "-m", "opitios.process_events"], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert _read_line(proc) == b"READY\n", proc.stderr.read1(4000) if proc.poll() is not None else b""
            crash = "processname:worker groupname:opitios from_state:RUNNING expected:0 pid:4242"
            for serial in (1, 2):  # a crash loop: the second exit sends nothing new
                proc.stdin.write(_event(serial, "PROCESS_STATE_EXITED", crash))
                proc.stdin.flush()
                assert _read_line(proc) == b"RESULT 2\n" and proc.stdout.read(2) == b"OK"
                assert _read_line(proc) == b"READY\n"
            messages = receiver.wait(1, timeout=30)
            assert [m["title"] for m in messages] == ["[Opitios] worker exited unexpectedly and was restarted"]
            assert "pid 4242" in messages[0]["message"]
        finally:
            proc.kill()
            proc.wait(timeout=10)
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                stream.close()
    finally:
        receiver.close()


def test_make_runs_supervisord_starts_the_listener(tmp_path):
    conf = render(programs={"web": [sys.executable, "-m", "gunicorn"]}, base_dir=ROOT, run_dir=tmp_path)
    assert "[eventlistener:alerts]" in conf
    assert "events=PROCESS_STATE_EXITED,PROCESS_STATE_FATAL,PROCESS_STATE_RUNNING" in conf
