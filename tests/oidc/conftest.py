"""A real OpenID Connect provider on loopback: the npm package oidc-provider run by the machine's Node.js
(tests/oidc/provider.mjs), with synthetic test users and groups in a JSON file the tests can rewrite.

`npm ci` runs here when node_modules is missing, so the README's test command works on a fresh clone. Locally,
a missing node or npm skips these tests with the reason; with CI=true it fails them (.ci/run installs both).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from carepath.testing import in_ci
from pathways.web import sign_on

HERE = Path(__file__).resolve().parent
CLAIM_MAP = HERE / "claim-map.yaml"
CLIENT_ID = "carepath-test"
CLIENT_SECRET = "test-only-client-secret"
PASSWORD = "op-test-password"

# username -> groups at "the hospital". Synthetic people.
DEFAULT_USERS: dict[str, list[str]] = {
    "op-coordinator": ["cp-coordinators", "cp-site-chi", "hospital-staff"],
    "op-auditor": ["cp-auditors", "cp-site-chi"],
    "op-wound": ["cp-wound-nursing", "cp-site-chi"],
    "op-nobody": ["hospital-staff"],
}


def _missing() -> str | None:
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            return f"{tool} not found (apt-get install -y nodejs npm)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Provider:
    """The running provider: its issuer URL and the users file it reads at every login."""

    issuer: str
    users_file: Path

    def set_users(self, groups: dict[str, list[str]], *, disabled: tuple[str, ...] = ()) -> None:
        users = {
            name: {
                "password": PASSWORD,
                "email": f"{name}@hospital.example",
                "given_name": name.split("-")[-1].title(),
                "family_name": "Synthetic",
                "groups": member_of,
                "disabled": name in disabled,
            }
            for name, member_of in groups.items()
        }
        self.users_file.write_text(json.dumps(users), encoding="utf-8")


@pytest.fixture(scope="session")
def oidc_provider_process(live_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    reason = _missing()
    if reason:
        if in_ci():
            pytest.fail(f"CI=true and the sign-on tests cannot run: {reason}")
        pytest.skip(reason)
    if not (HERE / "node_modules" / "oidc-provider").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True, timeout=300)
    port = _free_port()
    provider = Provider(issuer=f"http://127.0.0.1:{port}", users_file=tmp_path_factory.mktemp("oidc") / "users.json")
    provider.set_users(DEFAULT_USERS)
    env = {
        **os.environ,
        "OIDC_PORT": str(port),
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "OIDC_REDIRECT_URI": f"{live_server.url}/oidc/callback/",
        "OIDC_POST_LOGOUT_REDIRECT_URI": f"{live_server.url}/accounts/login/",
        "OIDC_USERS_FILE": str(provider.users_file),
    }
    log = (tmp_path_factory.getbasetemp() / "oidc-provider.log").open("w")
    process = subprocess.Popen(["node", "provider.mjs"], cwd=HERE, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{provider.issuer}/.well-known/openid-configuration", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"oidc-provider did not start; see {log.name}")
            time.sleep(0.2)
        yield provider
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture
def oidc_provider(oidc_provider_process: Provider, settings: Any) -> Iterator[Provider]:
    """Carepath configured for the loopback provider (as the environment would configure it), with the
    default users and groups restored."""
    provider = oidc_provider_process
    provider.set_users(DEFAULT_USERS)
    settings.OIDC_ENABLED = True
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_OP_ISSUER = provider.issuer
    settings.OIDC_DISCOVERY_URL = f"{provider.issuer}/.well-known/openid-configuration"
    settings.OIDC_PROVIDER_NAME = "Test Hospital"
    settings.OIDC_CLAIM_MAP_FILE = str(CLAIM_MAP)
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, "pathways.web.sign_on.CarepathOIDCBackend"]
    sign_on._discovery_cache.clear()
    yield provider
    sign_on._discovery_cache.clear()


# The headless Chromium driver of the browser tests (Debian's chromium + chromium-driver).
from tests.browser.conftest import artifacts, driver  # noqa: E402, F401
