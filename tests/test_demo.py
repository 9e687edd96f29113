"""`ssobridge demo`: a newcomer's first run, on the embedded sample directory."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from tests.support.services import free_port


@pytest.fixture(scope="module")
def demo():
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "ssobridge", "demo", "--listen", f"127.0.0.1:{port}"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, encoding="utf-8")
    banner = ""
    deadline = time.monotonic() + 30
    while "Stop with Ctrl+C" not in banner and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        banner += line
    yield banner, f"http://127.0.0.1:{port}/ExternalProvider.asmx"
    process.terminate()
    process.wait(10)


def test_demo_prints_url_password_and_users(demo):
    banner, url = demo
    assert f"Web Service URL:      {url}" in banner
    assert re.search(r"Web Service Password: \S{12,}", banner)
    assert "alice    password 'Alice-Passw0rd'" in banner


@pytest.mark.parametrize("username", ["alice", "DEMO\\alice", "alice@demo.example"])
def test_dotnet_client_logs_a_sample_user_in(demo, dotnet, username):
    banner, url = demo
    password = re.search(r"Web Service Password: (\S+)", banner).group(1)
    result = dotnet.call(url, "Authenticate", [f"authPW={password}", f"loginUsername={username}",
                                               "loginPassword=Alice-Passw0rd"])
    assert result == {"Success": True, "Message": "Login Successful", "OutputVariables": [
        "Authentication=OK", "EmailAddress=alice@demo.example", "DisplayName=Alice Example",
        "cf_Department=Sales", "cf_Job Title=Account Manager"]}
    wrong = dotnet.call(url, "Authenticate", [f"authPW={password}", f"loginUsername={username}",
                                              "loginPassword=alice"])
    assert wrong["OutputVariables"] == ["Authentication=FAIL"]


def test_demo_shows_the_customer_card(demo, dotnet):
    banner, url = demo
    password = re.search(r"Web Service Password: (\S+)", banner).group(1)
    result = dotnet.call(url, "GetUserDetails", [f"authPW={password}", "username=alice", "email="])
    assert result["Success"] is True and "Alice Example" in result["UserInfoHtml"]
