"""The desk dashboard in a real headless Chromium (1440 px wide) against a live server and alpacasim: a desk
user's pages (accounts, account, latency, traffic, live quotes), millisecond times and formatted numbers;
a compliance officer kept out of the desk and the desk kept out of the compliance console.

``make screenshots`` runs this file with OPITIOS_SCREENSHOT_DIR=docs/screenshots."""
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.desk.conftest import PASSWORD, _fresh_latency_figures, ensure_desk_group, record, snapshot, user_in  # noqa: F401 - a fixture
from tests.desk.test_account_page import OPTION, fill, live  # noqa: F401 - live is a fixture
from tests.e2e.test_compliance_admin import CHROMEDRIVER, CHROMIUM, MS_TIME, _snap, _wait_for, browser  # noqa: F401 - browser is a fixture
from tests.helpers.sim import sim, sim_server  # noqa: F401 - fixtures
from tests.trading.conftest import client_for, config_file, token  # noqa: F401 - config_file is a fixture

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER) or not __import__("pathlib").Path(CHROMIUM).exists(),
                       reason="needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver)"),
]
MONEY = re.compile(r"[−+]?\$\d{1,3}(,\d{3})*\.\d{2}")


def _login(driver, live_server, username: str, next_page: str):
    from selenium.webdriver.common.by import By

    driver.get(f"{live_server.url}{next_page}")  # not logged in: the admin's login page, then back here
    _wait_for(driver, "input[name=username]").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    _wait_for(driver, "#user-tools")


def _status(driver, url: str) -> int:
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1]; fetch(arguments[0], {redirect: 'manual'}).then(r => done(r.status));", url)


@pytest.fixture
def desk(transactional_db, live):  # noqa: F811
    from accounts.models import AlpacaAccount
    from sellbot.models import ManagedPosition
    from tests.audit.factories import ensure_compliance_group

    ensure_desk_group()
    ensure_compliance_group()
    user_in("Desk", "dana")
    user_in("Compliance officers", "officer")
    now = timezone.now()
    accounts = list(AlpacaAccount.objects.order_by("account_id"))
    for n, account in enumerate(accounts):
        snapshot(account, equity=100_000 + 1_000 * n, at=now - timedelta(days=1, hours=2))
        snapshot(account, equity=Decimal("100250.50") + 1_000 * n, cash=Decimal("42000.25"), at=now - timedelta(seconds=30))
    account = accounts[0]
    for n in range(1, 17):  # with the fills' orders below, all fit the account page's 25 recent orders
        record(account, n=n, received_at=now - timedelta(minutes=n * 7), total_ms=3.0 + n / 4, broker_ms=2.0 + n / 5, overhead_ms=1.0 + n / 20,
               outcome="refused" if n % 4 == 0 else "accepted", broker_status="" if n % 4 == 0 else "filled", order_type="limit" if n % 3 else "market", source="sellbot" if n % 4 == 0 else "api")
    order = {"symbol": "MSFT", "qty": "2", "side": "buy", "type": "market", "time_in_force": "day", "client_order_id": "desk-e2e-1"}
    assert client_for(token(user_id="u1", account_id=account.account_id)).post("/api/v1/stocks/order", order, format="json").status_code == 201
    day = 24 * 60
    fill(account, 1, symbol="AAPL", side="buy", qty="10", price="100", cumulative="10", total="10", minutes=0)
    fill(account, 2, symbol="AAPL", side="buy", qty="3", price="110", cumulative="3", total="5", minutes=1, event="partial_fill")
    fill(account, 2, symbol="AAPL", side="buy", qty="2", price="111", cumulative="5", total="5", minutes=2)
    fill(account, 3, symbol="AAPL", side="sell", qty="12", price="120", cumulative="12", total="12", minutes=day)
    fill(account, 4, symbol=OPTION, side="buy", qty="2", price="1.50", cumulative="2", total="2", minutes=day, asset_class="us_option")
    fill(account, 5, symbol=OPTION, side="sell", qty="2", price="2.50", cumulative="2", total="2", minutes=2 * day, asset_class="us_option")
    ManagedPosition.objects.create(account=account, symbol=OPTION, qty=1, entry_price=Decimal("1.5"), opened_at=now - timedelta(hours=1),
                                   high_water_mark=Decimal("2.75"))
    return account


def test_desk_user_in_a_real_browser(browser, live_server, desk):  # noqa: F811
    from selenium.webdriver.common.by import By

    _login(browser, live_server, "dana", "/desk/")
    table = browser.find_element(By.ID, "accounts-overview")
    rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(rows) >= 3 and desk.account_id in rows[0].text
    assert MS_TIME.search(rows[0].text) and "$42,000.25" in rows[0].text and "+$250.50" in rows[0].text
    assert float(browser.find_element(By.ID, "desk-built-ms").text) >= 0
    _snap(browser, "desk-accounts.png")

    browser.find_element(By.CSS_SELECTOR, "a[data-sort=equity]").click()
    _wait_for(browser, "th.sorted.ascending a[data-sort=equity]")
    browser.find_element(By.CSS_SELECTOR, "a[data-sort=equity]").click()
    first = _wait_for(browser, "th.sorted.descending a[data-sort=equity]") and browser.find_element(By.CSS_SELECTOR, "#accounts-overview tbody tr")
    assert desk.account_id not in first.text  # the richest account first: the last of the demo accounts

    browser.get(f"{live_server.url}/desk/accounts/{desk.account_id}/")
    assert "MSFT" in browser.find_element(By.ID, "holdings").text
    assert browser.find_elements(By.CSS_SELECTOR, "svg.equity-chart circle")
    assert browser.find_element(By.ID, "realized-total").text == "+$420.00"  # 220 on AAPL + 2 × $1.00 × 100 on the option
    by_symbol = browser.find_element(By.ID, "pnl-by-symbol").text
    assert "AAPL +$220.00" in by_symbol and f"{OPTION} +$200.00" in by_symbol
    orders = browser.find_element(By.ID, "recent-orders").text
    assert MS_TIME.search(orders) and "partial_fill 3@$110.00" in orders
    assert OPTION in browser.find_element(By.ID, "managed-positions").text
    _snap(browser, "desk-account.png")

    browser.get(f"{live_server.url}/desk/latency/")
    overall = browser.find_element(By.ID, "latency-all").text  # exact figures: tests/desk/test_pages.py
    assert re.search(r"\d+\.\d %", overall) and re.search(r"\b\d+\.\d\b", overall)
    assert browser.find_elements(By.CSS_SELECTOR, "svg.latency-chart circle")
    assert re.search(r"\d+\.\d ", browser.find_element(By.ID, "latency-source").text)
    _snap(browser, "desk-latency.png")

    browser.get(f"{live_server.url}/desk/traffic/")
    endpoints = browser.find_element(By.ID, "traffic-endpoints").text
    assert "desk/" in endpoints and "api/v1/stocks/order" in endpoints
    assert desk.account_id in browser.find_element(By.ID, "traffic-budget").text  # the page's broker calls used its budget
    _snap(browser, "desk-traffic.png")

    browser.get(f"{live_server.url}/desk/quotes/?symbols=AAPL,MSFT,SPY")
    assert [row.get_attribute("data-symbol") for row in browser.find_elements(By.CSS_SELECTOR, "#quotes-table tbody tr")] == ["AAPL", "MSFT", "SPY"]

    for page in ("/admin/trading/orderrecord/", "/admin/compliance/", "/admin/audit/auditevent/"):
        assert _status(browser, live_server.url + page) == 403, page


def test_compliance_officer_is_kept_out_of_the_desk(browser, live_server, desk):  # noqa: F811
    from selenium.webdriver.common.by import By

    _login(browser, live_server, "officer", "/admin/")
    assert not browser.find_elements(By.ID, "desk-link")
    for page in ("/desk/", f"/desk/accounts/{desk.account_id}/", "/desk/latency/", "/desk/traffic/", "/desk/quotes/"):
        assert _status(browser, live_server.url + page) == 403, page
    browser.get(f"{live_server.url}/admin/trading/orderrecord/")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")) >= 17  # the same records, read-only
    assert not browser.find_elements(By.NAME, "_save")


@pytest.fixture
def ws_server(sim_server, tmp_path):  # noqa: F811
    """/ws/market-data in its own process (and the hub: in it on embedded defaults, beside it with Redis) on
    alpacasim's streams; market data public, as in the demo."""
    import os

    import yaml

    from tests.helpers.stack import REPO_ROOT, Stack

    data = yaml.safe_load((REPO_ROOT / "secrets.example.yml").read_text())
    data["api"]["market_data_public"] = True
    secrets = tmp_path / "secrets.yml"
    secrets.write_text(yaml.safe_dump(data))
    env = {"OPITIOS_SECRETS": str(secrets), "ALPACA_PAPER_URL": sim_server.paper_url, "ALPACA_LIVE_URL": sim_server.live_url,
           "ALPACA_DATA_URL": sim_server.data_url}
    stack = Stack(tmp_path / "stack", processes=("ws", "hub") if os.environ.get("REDIS_URL") else ("ws",), env=env)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def test_live_quotes_panel_streams_in_the_browser(browser, live_server, ws_server, transactional_db, monkeypatch):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    ensure_desk_group()
    user_in("Desk", "dana")
    monkeypatch.setenv("OPITIOS_WS_PUBLIC_URL", f"ws://127.0.0.1:{ws_server.ws_port}/ws/market-data")
    _login(browser, live_server, "dana", "/desk/quotes/?symbols=AAPL,MSFT")
    WebDriverWait(browser, 60).until(lambda d: d.find_element(By.CSS_SELECTOR, "tr[data-symbol=AAPL] td.bid").text.startswith("$"))
    row = browser.find_element(By.CSS_SELECTOR, "tr[data-symbol=AAPL]")
    assert MONEY.fullmatch(row.find_element(By.CSS_SELECTOR, "td.ask").text)
    assert MS_TIME.fullmatch(row.find_element(By.CSS_SELECTOR, "td.at").text)
    assert browser.find_element(By.ID, "quotes-status").text.startswith("live, 2 symbols")
    _snap(browser, "desk-quotes.png")
