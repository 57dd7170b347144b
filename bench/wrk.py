"""The one HTTP load generator of the benchmarks: wrk (https://github.com/wg/wrk, Debian package ``wrk``).

Why wrk: a small C program with an epoll event loop, so on 2 cores the client takes little CPU from the
server it measures; it records every request's latency in a histogram (microsecond buckets) and reports
percentiles from it, not averages; Lua scripts set headers and POST bodies.

    from bench.wrk import run_wrk
    result = run_wrk(url, headers={"Authorization": "Bearer ..."}, connections=32, duration=5)
    result["requests_per_s"], result["latency_ms"]["p95"], result["quantiles_ms"]

The generated Lua script's ``done()`` prints the summary, the percentiles and the quantile function (sampled
at 0.5% steps) as one JSON line (prefixed ``WRK_JSON``), all from wrk's own per-request timings. ``parse_wrk_text`` reads
wrk's ``--latency`` text output, for callers that only have that.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile

MARKER = "WRK_JSON "
PERCENTILES = (50, 75, 90, 95, 99, 99.9)

_DONE = r"""
done = function(summary, latency, requests)
  -- wrk's Lua API has no per-bucket counts; its quantile function, from every request's latency, is
  -- sampled at 0.5% steps (0.1% in the top 1%): each point stands for the same share of the requests.
  local parts = {}
  local p = 0.5
  while p <= 100.0001 do
    parts[#parts + 1] = string.format("[%.1f,%d]", p, latency:percentile(p))
    if p >= 99 then p = p + 0.1 else p = p + 0.5 end
  end
  local pcts = {}
  for _, p in ipairs({%PERCENTILES%}) do
    pcts[#pcts + 1] = string.format("\"%s\":%d", tostring(p), latency:percentile(p))
  end
  local e = summary.errors
  io.write(string.format(
    "%MARKER%{\"duration_us\":%d,\"requests\":%d,\"bytes\":%d," ..
    "\"errors\":{\"connect\":%d,\"read\":%d,\"write\":%d,\"status\":%d,\"timeout\":%d}," ..
    "\"min_us\":%d,\"max_us\":%d,\"mean_us\":%f,\"percentiles_us\":{%s},\"quantiles_us\":[%s]}\n",
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.max, latency.mean, table.concat(pcts, ","), table.concat(parts, ",")))
end
"""


class WrkError(RuntimeError):
    pass


def wrk_path() -> str | None:
    return shutil.which("wrk")


def wrk_version() -> str | None:
    path = wrk_path()
    if not path:
        return None
    out = subprocess.run([path, "-v"], capture_output=True, text=True, check=False)
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0].split(" Copyright")[0] if first else None


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal for these characters


def lua_script(*, method: str = "GET", headers: dict[str, str] | None = None, body: str | None = None,
               body_per_request: str | None = None) -> str:
    """A wrk script: method, headers and body; ``body_per_request`` is a Lua expression evaluated for
    every request with ``n`` (a per-thread counter) and ``id`` (a per-thread random prefix) in scope,
    e.g. ``'{"client_order_id":"b-' .. id .. '-' .. n .. '"}'`` for unique ids."""
    lines = [f"wrk.method = {_lua_string(method)}"]
    for key, value in (headers or {}).items():
        lines.append(f"wrk.headers[{_lua_string(key)}] = {_lua_string(value)}")
    if body is not None:
        lines.append(f"wrk.body = {_lua_string(body)}")
    if body_per_request:
        lines += [
            "local n = 0",
            "local id = nil",
            "request = function()",
            "  if id == nil then id = string.format('%x%x', math.random(0, 0xffffff), os.time() % 0xffffff) end",
            "  n = n + 1",
            f"  return wrk.format(nil, nil, nil, {body_per_request})",
            "end",
        ]
    pcts = ",".join(str(p) for p in PERCENTILES)
    lines.append(_DONE.replace("%PERCENTILES%", pcts).replace("%MARKER%", MARKER))
    return "\n".join(lines) + "\n"


def parse_done_json(stdout: str) -> dict | None:
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER):])
    return None


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk_text(output: str) -> dict:
    """requests/s, p50/p75/p90/p99 and error counts from wrk's ``--latency`` text output."""
    out: dict = {}
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    out["requests_per_s"] = float(rps.group(1)) if rps else None
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", output, re.MULTILINE)
        out[f"p{pct}_ms"] = round(_ms(m.group(1)), 3) if m else None
    total = re.search(r"(\d+) requests in", output)
    out["requests"] = int(total.group(1)) if total else None
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    out["non_2xx"] = int(errors.group(1)) if errors else 0
    sock = re.search(r"Socket errors: (.*)", output)
    out["socket_errors"] = sock.group(1).strip() if sock else None
    return out


def summarise(done: dict) -> dict:
    """The figures callers use, in milliseconds, from the ``done()`` JSON."""
    duration_s = done["duration_us"] / 1e6
    pcts = done["percentiles_us"]
    latency = {f"p{k.replace('.0', '').replace('.', '')}": round(v / 1000, 3) for k, v in pcts.items()}
    latency.update(mean=round(done["mean_us"] / 1000, 3), min=round(done["min_us"] / 1000, 3), max=round(done["max_us"] / 1000, 3))
    return {
        "requests": done["requests"],
        "duration_s": round(duration_s, 3),
        "requests_per_s": round(done["requests"] / duration_s, 1) if duration_s else None,
        "latency_ms": latency,
        "errors": done["errors"],
        "non_2xx": done["errors"]["status"],
        # [percentile, latency ms] pairs: the distribution for charts (see the Lua note above)
        "quantiles_ms": [[p, round(v / 1000, 3)] for p, v in done["quantiles_us"]],
    }


def run_wrk(url: str, *, method: str = "GET", headers: dict[str, str] | None = None, body: str | None = None,
            body_per_request: str | None = None, connections: int = 32, threads: int = 1, duration: float = 5,
            timeout_s: float = 5, cpus: list[int] | None = None) -> dict:
    """Run wrk against ``url`` and return ``summarise()``'s dict (plus the command line).
    ``cpus`` pins wrk with taskset (when present) so it does not share a core with the server it measures."""
    path = wrk_path()
    if not path:
        raise WrkError("wrk is not installed (apt-get install -y wrk)")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(lua_script(method=method, headers=headers, body=body, body_per_request=body_per_request))
    try:
        seconds = max(1, round(duration))
        cmd = [path, f"-t{threads}", f"-c{max(connections, threads)}", f"-d{seconds}s", f"--timeout={max(1, round(timeout_s))}s",
               "--latency", "-s", lua.name, url]
        if cpus and shutil.which("taskset"):
            cmd = ["taskset", "-c", ",".join(str(c) for c in cpus), *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + timeout_s + 30, check=False)
    finally:
        os.unlink(lua.name)
    done = parse_done_json(proc.stdout)
    if proc.returncode != 0 or done is None:
        raise WrkError(f"wrk failed ({proc.returncode}): {proc.stderr.strip()[-500:] or proc.stdout.strip()[-500:]}")
    result = summarise(done)
    result["command"] = " ".join(cmd[:-3] + ["<script>", url])
    return result
