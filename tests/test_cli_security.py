"""TLS and security-profile options of `fleet run` / `fleet csms`: one-line errors, the
insecure warning, and a real run per way of trusting the CSMS."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from fleet.csms.server import CsmsThread, tls_context

KEY = "cli-test-key-0123456789"


def fleet(
    *args: str, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleet", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert proc.returncode == 2, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


class Files:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ca = trustme.CA()
        self.ca_file = folder / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self.server_pem = folder / "server.pem"
        self.ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(
            str(self.server_pem)
        )
        self.other_ca_file = folder / "other-ca.pem"
        trustme.CA().cert_pem.write_to_path(str(self.other_ca_file))
        self.garbage = folder / "garbage.pem"
        self.garbage.write_text("this is not a certificate\n")

    def profile(self, security: str, name: str = "secure") -> str:
        path = self.folder / f"{name}.yaml"
        path.write_text(
            f"name: {name}\nbehaviour: idle\nstation:\n"
            "  config: {MinimumStatusDuration: 0}\n"
            f"  security: {security}\n"
        )
        return str(path)


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)


@pytest.fixture
def tls_csms(files: Files) -> Iterator[CsmsThread]:
    csms = CsmsThread(
        ssl_context=tls_context(str(files.server_pem)), basic_auth=lambda sid, pw: pw == KEY
    )
    csms.start()
    yield csms
    csms.stop()


def test_bad_tls_files_are_one_line_errors(files: Files) -> None:
    wss = "wss://127.0.0.1:9/ocpp"
    one_line_error(
        fleet("run", "--headless", "--csms", wss, "--ca-file", str(files.folder / "nope.pem")),
        "TLS: CA file",
        "nope.pem",
    )
    one_line_error(
        fleet("run", "--headless", "--csms", wss, "--ca-file", str(files.garbage)),
        "garbage.pem",
    )
    one_line_error(
        fleet("run", "--headless", "--csms", wss, "--client-cert", str(files.garbage)),
        "client certificate",
        "garbage.pem",
    )
    one_line_error(
        fleet("run", "--headless", "--insecure", "--ca-file", str(files.ca_file)), "contradict"
    )
    one_line_error(fleet("csms", "--tls-cert", str(files.folder / "nope.pem")), "TLS", "--tls-cert")


def test_a_csms_certificate_that_does_not_verify_stops_the_run(
    files: Files, tls_csms: CsmsThread
) -> None:
    for trust in (["--ca-file", str(files.other_ca_file)], []):
        line = one_line_error(
            fleet("run", "--headless", "--csms", tls_csms.url, *trust),
            "does not verify",
            "--ca-file",
        )
        assert "127.0.0.1" in line


def test_profile_security_settings_are_checked(files: Files, tls_csms: CsmsThread) -> None:
    env_profile = files.profile("{profile: 2, authorization_key_env: FLEET_CLI_TEST_KEY}")
    one_line_error(
        fleet("profiles", "validate", env_profile), "authorization_key_env", "FLEET_CLI_TEST_KEY"
    )
    short = fleet("profiles", "validate", env_profile, env={"FLEET_CLI_TEST_KEY": "short-key"})
    line = one_line_error(short, "at least 16 bytes")
    assert "short-key" not in line
    one_line_error(
        fleet("profiles", "validate", files.profile("{profile: 1}", "nokey")),
        "needs authorization_key_env",
    )
    one_line_error(
        fleet("profiles", "validate", files.profile("{profile: 7}", "seven")),
        "station.security.profile",
    )
    ok_env = {"FLEET_CLI_TEST_KEY": KEY}
    # Profile 2 needs wss://: not the embedded (ws://) CSMS, not a ws:// URL.
    one_line_error(
        fleet("run", "--headless", "--profile", env_profile, env=ok_env), "needs a wss://"
    )
    one_line_error(
        fleet(
            "run",
            "--headless",
            "--profile",
            env_profile,
            "--csms",
            "ws://127.0.0.1:9/ocpp",
            env=ok_env,
        ),
        "needs a wss://",
    )
    one_line_error(
        fleet(
            "run",
            "--headless",
            "--profile",
            files.profile("{profile: 3}", "mtls"),
            "--csms",
            tls_csms.url,
            "--ca-file",
            str(files.ca_file),
        ),
        "needs a client certificate",
    )


@pytest.mark.parametrize("trust", ["ca-file", "insecure"])
def test_profile_2_run_against_a_tls_csms(files: Files, tls_csms: CsmsThread, trust: str) -> None:
    options = ["--ca-file", str(files.ca_file)] if trust == "ca-file" else ["--insecure"]
    proc = fleet(
        "run",
        "--headless",
        "--csms",
        tls_csms.url,
        *options,
        "--profile",
        files.profile("{profile: 2, authorization_key_env: FLEET_CLI_TEST_KEY}"),
        "--stations",
        "2",
        "--spawn-rate",
        "10",
        "--duration",
        "3s",
        env={"FLEET_CLI_TEST_KEY": KEY},
        timeout=90,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert tls_csms.ledger.summary()["boots"] == 2
    warnings = [line for line in proc.stderr.splitlines() if "WARNING" in line]
    if trust == "insecure":
        assert any(
            line.startswith("fleet: WARNING: TLS certificate verification is off")
            for line in warnings
        ), proc.stderr
    else:
        assert warnings == []
    assert KEY not in proc.stdout + proc.stderr


def test_embedded_csms_requires_the_profile_1_key(files: Files) -> None:
    proc = fleet(
        "run",
        "--headless",
        "--profile",
        files.profile("{profile: 1, authorization_key_env: FLEET_CLI_TEST_KEY}"),
        "--stations",
        "2",
        "--spawn-rate",
        "10",
        "--duration",
        "3s",
        env={"FLEET_CLI_TEST_KEY": KEY},
        timeout=90,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "boots 2" in proc.stdout
    assert KEY not in proc.stdout + proc.stderr
