"""A real OpenSSH server on loopback: temp host key, key auth only, known_hosts written.

Started once per test session by the ``sshd`` fixture (testkit.jobs_servers).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


def available() -> bool:
    return os.geteuid() == 0 and all(shutil.which(p) for p in ("sshd", "ssh-keygen"))


@dataclass
class Sshd:
    port: int
    known_hosts: Path
    client_key: Path
    proc: subprocess.Popen[bytes]
    user: str = "root"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True, timeout=30
    )
    return path.with_suffix(".pub").read_text().strip()


def start(root: Path, timeout: float = 30.0) -> Sshd:
    root.mkdir(parents=True, exist_ok=True)
    host_pub = _keygen(root / "host_ed25519")
    client_pub = _keygen(root / "client_ed25519")
    (root / "authorized_keys").write_text(client_pub + "\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    sftp = shutil.which("sftp-server") or "/usr/lib/openssh/sftp-server"
    conf = root / "sshd_config"
    conf.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root}/host_ed25519\n"
        f"PidFile {root}/sshd.pid\nAuthorizedKeysFile {root}/authorized_keys\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "PermitRootLogin prohibit-password\nStrictModes no\nMaxSessions 100\nMaxStartups 100\n"
        f"Subsystem sftp {sftp}\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    known = root / "known_hosts"
    key_type, key_b64 = host_pub.split()[:2]
    known.write_text(f"[127.0.0.1]:{port} {key_type} {key_b64}\n")
    log = (root / "sshd.log").open("ab")
    proc = subprocess.Popen(
        [shutil.which("sshd") or "/usr/sbin/sshd", "-D", "-e", "-f", str(conf)],
        stdout=log,
        stderr=log,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                if c.recv(4).startswith(b"SSH-"):
                    return Sshd(port, known, root / "client_ed25519", proc)
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"sshd did not start: {(root / 'sshd.log').read_text()[-2000:]}")
