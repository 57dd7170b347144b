"""A compliance officer in a real headless Chromium against a live server: views, exports, no edits, no secrets."""
import shutil
import tempfile
from pathlib import Path

import pytest
from django.conf import settings

from audit.services import audit_record
from tests.audit.factories import API_KEY_CIPHERTEXT, SECRET_KEY_CIPHERTEXT, AlpacaAccountFactory, ensure_compliance_group

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
PASSWORD = "Compliance-e2e-Pa55!"

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
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--window-size=1280,1000", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def seeded(transactional_db, monkeypatch):
    from django.core.management import call_command

    ensure_compliance_group()

    monkeypatch.setenv("OPITIOS_COMPLIANCE_PASSWORD", PASSWORD)
    call_command("create_compliance_officer", "officer", "--noinput")
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

    browser.get(f"{live_server.url}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys("officer")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    assert browser.find_element(By.ID, "compliance-summary")  # the admin index shows the chain status
    _assert_no_secret(browser)

    browser.get(f"{live_server.url}/admin/compliance/")
    body = browser.find_element(By.ID, "compliance-dashboard").text
    assert "Verified OK" in body and "No orders today." in body and "account_009" in body
    _assert_no_secret(browser)
    shots = Path(settings.VAR_DIR) / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(shots / "compliance-landing.png"))

    browser.get(f"{live_server.url}/admin/audit/auditevent/?action=order.submitted")
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(rows) == 5
    browser.save_screenshot(str(shots / "compliance-audit-events.png"))
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
