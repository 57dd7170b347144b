"""No credential, plaintext or ciphertext, in any log file, API response, admin page or compliance export."""
import logging
from pathlib import Path

import pytest
from django.conf import settings

from accounts.broker import BrokerError, broker_for
from accounts.detection import accounts_detect_types
from accounts.models import AlpacaAccount
from accounts.services import account_sync
from opitios.auth import issue_token
from opitios.config import parse_config
from tests.accounts.factories import DEMO, demo_config_dict

pytestmark = pytest.mark.django_db


def log_files() -> list[Path]:
    return sorted(Path(settings.LOG_DIR).rglob("*.log"))


def test_no_credential_leaks(client, alpaca, django_user_model):
    offsets = {p: p.stat().st_size for p in log_files()}
    # A sync, detection with a mismatch and a failure, broker errors, and an explicit attempt to log a key.
    config = demo_config_dict()
    config["accounts"]["account_002"]["paper_trading"] = False
    account_sync(config=parse_config(config, source=None, demo=False), detect=True)
    alpaca.set_fault("account", status=500, count=1)
    accounts_detect_types(accounts=AlpacaAccount.objects.filter(account_id="account_003"))
    a1 = AlpacaAccount.objects.get(account_id="account_001")
    a1.secret_key_encrypted = AlpacaAccount.objects.get(account_id="account_002").secret_key_encrypted
    try:
        broker_for(a1).get_account()  # 401: the keys do not match
    except BrokerError:
        logging.getLogger("opitios.test").exception("broker failed for key %s secret %s", "PKDEMO0000000000001", "demo-secret-0000000001")
    logging.getLogger("opitios.test").error("headers %s", broker_for(a1)._trading._get_auth_headers())

    pages = []
    token = issue_token(user_id="ops", permissions=["admin"])
    pages.append(client.get("/api/v1/admin/pool", HTTP_AUTHORIZATION=f"Bearer {token}").content.decode())
    pages.append(client.get("/api/v1/health/detailed", HTTP_AUTHORIZATION=f"Bearer {token}").content.decode())
    # trading responses: an accepted order (account_001) and a refused one (account_003 is below its minimum)
    for account_id in ("account_001", "account_003"):
        auth = {"HTTP_AUTHORIZATION": f"Bearer {issue_token(user_id='t', permissions=['trading', 'account_access'], account_id=account_id)}"}
        order = {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day"}
        pages.append(client.post("/api/v1/stocks/order", order, content_type="application/json", **auth).content.decode())
        for path in ("/api/v1/account", "/api/v1/positions", "/api/v1/orders"):
            pages.append(client.get(path, **auth).content.decode())
    user = django_user_model.objects.create_superuser("root", "r@example.com", "pw-root-123456")
    client.force_login(user)
    pages.append(client.get("/admin/accounts/alpacaaccount/").content.decode())
    for account in AlpacaAccount.objects.all():
        pages.append(client.get(f"/admin/accounts/alpacaaccount/{account.pk}/change/").content.decode())
    pages.append(client.get("/admin/").content.decode())
    pages.append(client.get("/admin/compliance/").content.decode())
    for model in ("audit/auditevent", "trading/orderrecord", "accounts/alpacaaccount"):
        for fmt in ("csv", "jsonl"):
            pages.append(b"".join(client.get(f"/admin/{model}/export/{fmt}/").streaming_content).decode())
    pages.append(client.get("/admin/trading/orderrecord/").content.decode())
    assert "account_003" in pages[-1], "the orders must have been recorded"

    for handler in logging.getLogger().handlers:
        handler.flush()
    logs = ""
    for path in log_files():
        with path.open(encoding="utf-8", errors="replace") as fh:
            fh.seek(offsets.get(path, 0))
            logs += fh.read()
    assert "account_001" in logs and "type=live" in logs, "the scenario must have been logged"

    secrets = [v for key, secret, _ in DEMO.values() for v in (key, secret)]
    for account in AlpacaAccount.objects.all():
        secrets += [account.api_key_encrypted, account.secret_key_encrypted]
    for secret in secrets:
        assert secret not in logs, f"credential in the log files: {secret[:6]}…"
        for page in pages:
            assert secret not in page, f"credential in a page: {secret[:6]}…"
