"""The sign-in page in a real headless browser: Debian's chromium driven by Selenium through Debian's
chromedriver (never a downloaded one). A good password lands on ReturnUrl, a page on another loopback port
listed in return_hosts, which receives the cookie; a wrong one shows the message; a disabled account gets
no cookie. Skipped when chromium, chromium-driver or selenium is missing (tests/support/install-deps.sh
installs them).
"""

from __future__ import annotations

import http.server
import threading
from pathlib import Path
from urllib.parse import quote

import pytest

from ssobridge.sso.cookie import read_cookie
from tests.support.services import ATTRIBUTES, MESSAGES, WRONG, ad_config, free_port, start_service
from tests.support.sso import sso_toml

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip("Debian's chromium and chromium-driver are not installed (tests/support/install-deps.sh)",
                allow_module_level=True)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


class Landing(http.server.ThreadingHTTPServer):
    """The page ReturnUrl points at: it remembers the Cookie header of each request."""

    def __init__(self):
        self.cookies: list[str] = []
        landing = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                landing.cookies.append(self.headers.get("Cookie", ""))
                body = b"<!DOCTYPE html><html lang='en'><title>Landed</title><p id='landed'>Landed</p></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", free_port()), Handler)


@pytest.fixture(scope="module")
def landing():
    server = Landing()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser_site(samba_ad, landing, tmp_path_factory):
    port = landing.server_address[1]
    section, key = sso_toml(f"http://127.0.0.1:{port}/portal", (f"127.0.0.1:{port}",))
    service = start_service(tmp_path_factory.mktemp("sso-browser"), ad_config(samba_ad) + ATTRIBUTES + section)
    yield service, key, f"http://127.0.0.1:{port}/landed"
    service.stop()


@pytest.fixture
def chromium():
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def sign_in(driver, service, return_url: str, username: str, password: str) -> None:
    base = service.url.rsplit("/", 1)[0]
    driver.get(f"{base}/sso/login?ReturnUrl={quote(return_url, safe='')}")
    assert driver.switch_to.active_element.get_attribute("id") == "username"  # focus starts in the form
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def test_good_password_lands_on_return_url_with_the_cookie(chromium, browser_site, samba_ad, landing):
    service, key, return_url = browser_site
    user = samba_ad.users["jdoe"]
    sign_in(chromium, service, return_url, user.login, user.password)
    WebDriverWait(chromium, 20).until(lambda d: d.current_url == return_url)
    assert chromium.find_element(By.ID, "landed").text == "Landed"
    sent = dict(pair.split("=", 1) for pair in landing.cookies[-1].split("; "))
    assert read_cookie(key, sent[".ASPXAUTH"]).name == "EXAMPLE\\jdoe"
    cookie = chromium.get_cookie(".ASPXAUTH")
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Lax", "/")


def test_wrong_password_shows_the_message_and_keeps_the_username(chromium, browser_site):
    service, _, return_url = browser_site
    sign_in(chromium, service, return_url, "jdoe", "Not-The-Passw0rd!")
    WebDriverWait(chromium, 20).until(lambda d: d.find_elements(By.ID, "message"))
    assert chromium.find_element(By.ID, "message").text == WRONG
    assert chromium.find_element(By.ID, "username").get_attribute("value") == "jdoe"
    assert chromium.find_element(By.ID, "password").get_attribute("value") == ""
    assert chromium.switch_to.active_element.get_attribute("id") == "password"
    assert chromium.get_cookie(".ASPXAUTH") is None


def test_disabled_account_gets_no_cookie(chromium, browser_site, samba_ad):
    service, _, return_url = browser_site
    user = samba_ad.users["disabled"]
    sign_in(chromium, service, return_url, user.login, user.password)
    WebDriverWait(chromium, 20).until(lambda d: d.find_elements(By.ID, "message"))
    assert chromium.find_element(By.ID, "message").text == MESSAGES["disabled"]
    assert chromium.get_cookie(".ASPXAUTH") is None
