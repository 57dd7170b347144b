"""Secrets that embedded (dev, demo, test) environments generate once and keep under var/."""
import os
import secrets
from pathlib import Path


def persistent_secret(path: Path, *, factory=lambda: secrets.token_urlsafe(50)) -> str:
    """Return the secret stored at ``path``, creating it (mode 0600) on first use.

    Creation is atomic (O_EXCL), so processes starting together agree on one value.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_nonempty(path)
    with os.fdopen(fd, "w") as fh:
        fh.write(factory())
    return _read_nonempty(path)


def _read_nonempty(path: Path) -> str:
    import time

    for _ in range(50):  # another process may be between create and write
        value = path.read_text().strip()
        if value:
            return value
        time.sleep(0.02)
    raise RuntimeError(f"secret file {path} is empty")
