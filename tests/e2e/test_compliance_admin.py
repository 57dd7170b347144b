"""A compliance officer in a real headless Chromium (1440 px wide) against a live server: the console's status,
verify-now, millisecond times, the order ledger placed through the API to alpacasim, exports, no edits, no secrets.

``make screenshots`` runs this file with OPITIOS_SCREENSHOT_DIR=docs/screenshots."""
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from django.conf import settings

from audit.services import audit_record
from tests.audit.factories import API_KEY_CIPHERTEXT, SECRET_KEY_CIPHERTEXT, AlpacaAccountFactory, ensure_compliance_group
from tests.helpers.sim import sim, sim_server  # noqa: F401 - fixtures
from tests.trading.conftest import client_for, config_file, token  # noqa: F401 - config_file is a fixture

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
PASSWORD = "Compliance-e2e-Pa55!"
WIDTH = 1440
MS_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC")
EXAMPLE = Path(__file__).resolve().parents[2] / "secrets.example.yml"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                       reason="needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver)"),
]


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="opitios-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", f"--window-size={WIDTH},1000", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _officer(monkeypatch):
    from django.core.management import call_command

    ensure_compliance_group()
    monkeypatch.setenv("OPITIOS_COMPLIANCE_PASSWORD", PASSWORD)
    call_command("create_compliance_officer", "officer", "--noinput")


def _shots() -> Path:
    shots = Path(os.environ.get("OPITIOS_SCREENSHOT_DIR") or Path(settings.VAR_DIR) / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    return shots


def _snap(browser, name: str) -> None:
    """A full-page PNG at the test's width; the window goes back to its height after."""
    height = browser.execute_script("return Math.max(document.body.scrollHeight, 1000)")
    browser.set_window_size(WIDTH, height + 140)
    try:
        assert browser.save_screenshot(str(_shots() / name))
    finally:
        browser.set_window_size(WIDTH, 1000)


def _login(browser, live_server):
    from selenium.webdriver.common.by import By

    browser.get(f"{live_server.url}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys("officer")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    _wait_for(browser, "#user-tools")  # only a logged-in page has it


def _wait_for(browser, css: str):
    """A click that submits a form returns before the next page has loaded on a busy host: wait for its element."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, 30).until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css)))


@pytest.fixture
def seeded(transactional_db, monkeypatch):
    from django.core.management import call_command

    _officer(monkeypatch)
    paper = AlpacaAccountFactory(account_id="account_001")
    AlpacaAccountFactory(account_id="account_004", account_type="live", paper_trading=False)
    AlpacaAccountFactory(account_id="account_009", type_source="fallback", detection_error="connect timeout")
    for n in range(5):
        audit_record(actor_type="user", actor_id="7", action="order.submitted", account=paper, obj=("order", f"ord-{n}"), data={"symbol": "AAPL", "qty": n + 1})
    audit_record(actor_type="system", actor_id="", action="account.synced", data={"count": 3})
    call_command("verify_audit_chain")
    return paper


def _assert_no_secret(driver):
    source = driver.page_source
    for secret in (API_KEY_CIPHERTEXT, SECRET_KEY_CIPHERTEXT, "api_key_encrypted", "secret_key_encrypted"):
        assert secret not in source, driver.current_url


def test_compliance_officer_in_a_real_browser(browser, live_server, seeded):
    from selenium.webdriver.common.by import By

    from audit.models import AuditChainCheck, AuditEvent

    _login(browser, live_server)
    summary = browser.find_element(By.ID, "compliance-summary").text  # the admin index shows what needs attention
    for heading in ("Audit chain", "Configuration errors", "Accounts skipped", "Type mismatches", "Detection failures", "Stale balances"):
        assert heading in summary, heading
    assert "Opitios compliance console" in browser.find_element(By.ID, "site-name").text
    _assert_no_secret(browser)
    _snap(browser, "compliance-index.png")

    browser.get(f"{live_server.url}/admin/compliance/")
    body = browser.find_element(By.ID, "compliance-dashboard").text
    assert "Verified OK" in body and "No orders today." in body and "account_009" in body
    assert MS_TIME.search(browser.find_element(By.ID, "chain-status").text)
    assert browser.find_element(By.CSS_SELECTOR, "svg.latency-chart")
    _assert_no_secret(browser)
    _snap(browser, "compliance-landing.png")

    checks = AuditChainCheck.objects.count()
    browser.find_element(By.ID, "verify-chain-now").click()
    message = _wait_for(browser, "ul.messagelist li.success").text
    assert message.startswith("Audit chain verified OK: 6 events") and browser.current_url.endswith("/admin/compliance/")
    assert AuditChainCheck.objects.count() == checks + 1 and AuditChainCheck.objects.order_by("-ran_at").first().source == "admin"
    assert AuditEvent.objects.filter(action="audit.chain_verified", actor_id="officer").count() == 1

    browser.get(f"{live_server.url}/admin/audit/auditevent/?action=order.submitted")
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(rows) == 5
    assert len(MS_TIME.findall(browser.find_element(By.ID, "result_list").text)) == 5
    _snap(browser, "compliance-audit-events.png")
    export_href = browser.find_elements(By.CSS_SELECTOR, "a.export-link")[0].get_attribute("href")
    assert "action=order.submitted" in export_href
    csv_text = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {credentials: 'same-origin'}).then(r => r.text().then(t => done(r.status + '\\n' + t)));",
        export_href,
    )
    status, _, csv_body = csv_text.partition("\n")
    lines = csv_body.strip().splitlines()
    assert status == "200" and lines[0].startswith("seq,at,actor_type") and len(lines) == 6
    assert all(",order.submitted," in line for line in lines[1:])

    for page in ("/admin/accounts/alpacaaccount/", f"/admin/accounts/alpacaaccount/{seeded.pk}/change/"):
        browser.get(live_server.url + page)
        _assert_no_secret(browser)
        assert not browser.find_elements(By.NAME, "_save")

    for url in ("/admin/audit/auditevent/add/", "/admin/accounts/alpacaaccount/add/", "/admin/audit/auditevent/1/delete/"):
        status = browser.execute_async_script(
            "const done = arguments[arguments.length - 1]; fetch(arguments[0], {redirect: 'manual'}).then(r => done(r.status));",
            live_server.url + url,
        )
        assert status in (403, 0), (url, status)  # 0: an opaque redirect (to login), never a form
        browser.get(live_server.url + url)
        assert not browser.find_elements(By.CSS_SELECTOR, "form input[name=_save]"), url


@pytest.fixture
def ledger(transactional_db, monkeypatch, sim, settings, config_file):  # noqa: F811
    """The demo accounts synced and detected against alpacasim, and orders placed through the API."""
    from accounts import broker as broker_seam
    from accounts.services import account_sync
    from opitios.config import current_config

    settings.ALPACA_PAPER_URL, settings.ALPACA_LIVE_URL, settings.ALPACA_DATA_URL = sim.paper_url, sim.live_url, sim.data_url
    config_file.data["accounts"] = yaml.safe_load(EXAMPLE.read_text())["accounts"]
    config_file.write()
    broker_seam.reset_pool()
    account_sync(config=current_config(), detect=True)
    _officer(monkeypatch)
    order = {"symbol": "AAPL", "qty": "2", "side": "buy", "type": "market", "time_in_force": "day"}
    for n, account_id in enumerate(("account_001", "account_004", "account_001")):
        trader = client_for(token(user_id=f"user-{account_id}", account_id=account_id))
        response = trader.post("/api/v1/stocks/order", {**order, "client_order_id": f"e2e-{n}"}, format="json")
        assert response.status_code == 201, response.content
    yield
    broker_seam.reset_pool()


def test_officer_reads_the_order_ledger_at_1440_px(browser, live_server, ledger):
    from selenium.webdriver.common.by import By

    from trading.models import OrderRecord

    _login(browser, live_server)
    browser.get(f"{live_server.url}/admin/compliance/")
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.latency-chart circle")) == 3  # one day of data: p50, p95, p99 drawn
    assert browser.find_element(By.ID, "orders-today").text.split() == ["ACCEPTED", "3"]
    _snap(browser, "compliance-landing-with-orders.png")

    browser.get(f"{live_server.url}/admin/trading/orderrecord/")
    headers = [th.text.strip() for th in browser.find_elements(By.CSS_SELECTOR, "#result_list thead th") if th.text.strip()]
    assert headers[:9] == ["RECEIVED (UTC)", "ACCOUNT", "ACCOUNT TYPE", "ORDER TYPE", "SYMBOL", "SIDE", "QTY", "OUTCOME", "TOTAL MS"]
    viewport = browser.execute_script("return window.innerWidth")
    assert viewport <= WIDTH and browser.execute_script("return document.documentElement.scrollWidth") <= viewport
    for name in ("received_at_console", "outcome", "total_ms_console"):
        right = browser.execute_script(f"return document.querySelector('#result_list th.column-{name}').getBoundingClientRect().right")
        assert right <= viewport, name
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(rows) == 3 and all(MS_TIME.search(row.text) for row in rows)
    assert [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "#result_list td.field-qty_console")] == ["2", "2", "2"]
    results = "document.querySelector('#changelist .results')"
    assert browser.execute_script(f"return {results}.scrollWidth <= {results}.clientWidth")  # no column scrolled out of sight
    _snap(browser, "compliance-order-records.png")

    record = OrderRecord.objects.get(client_order_id="e2e-1")
    browser.get(f"{live_server.url}/admin/trading/orderrecord/{record.pk}/change/")
    timeline = browser.find_element(By.ID, "order-timeline").text
    # no trade-updates listener runs here, so no broker events follow (tests/trading/test_ledger.py shows them)
    for step in ("received", "checks", "submitted", "responded", "completed"):
        assert step in timeline
    assert re.search(r"\d{2}:\d{2}:\d{2}\.\d{6} UTC", timeline) and re.search(r"\+[\d,.]+ (ms|µs)", timeline)
    assert '"client_order_id": "e2e-1"' in browser.find_element(By.CSS_SELECTOR, "pre.console-json").text
    assert not browser.find_elements(By.NAME, "_save")
    _assert_no_secret(browser)
    _snap(browser, "compliance-order-record.png")
