import factory

from accounts import crypto
from accounts.models import AlpacaAccount

# The four accounts of alpacasim/demo.yml and secrets.example.yml.
DEMO = {
    "account_001": ("PKDEMO0000000000001", "demo-secret-0000000001", True),
    "account_002": ("PKDEMO0000000000002", "demo-secret-0000000002", True),
    "account_003": ("PKDEMO0000000000003", "demo-secret-0000000003", True),
    "account_004": ("AKDEMO0000000000004", "demo-secret-0000000004", False),
}


class AlpacaAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AlpacaAccount
        django_get_or_create = ("account_id",)

    class Params:
        api_key = factory.Sequence(lambda n: f"PKTEST{n:013d}")
        secret_key = factory.Sequence(lambda n: f"test-secret-{n:010d}")

    account_id = factory.Sequence(lambda n: f"acct_{n:04d}")
    name = factory.LazyAttribute(lambda o: f"Account {o.account_id}")
    tier = "standard"
    paper_trading = True
    # Detected as configured, so orders are accepted; tests of detection or of the refusals of an
    # undetected account pass type_source="unknown".
    account_type = factory.LazyAttribute(lambda o: "paper" if o.paper_trading else "live")
    type_source = "detected"
    api_key_encrypted = factory.LazyAttribute(lambda o: crypto.encrypt(o.api_key))
    secret_key_encrypted = factory.LazyAttribute(lambda o: crypto.encrypt(o.secret_key))


def demo_account(account_id: str, **kwargs) -> AlpacaAccount:
    key, secret, paper = DEMO[account_id]
    kwargs.setdefault("paper_trading", paper)
    return AlpacaAccountFactory(account_id=account_id, api_key=key, secret_key=secret, **kwargs)


def demo_accounts(**kwargs) -> list[AlpacaAccount]:
    return [demo_account(a, **kwargs) for a in DEMO]


def demo_config_dict(**overrides) -> dict:
    accounts = {
        account_id: {"name": f"Demo {account_id}", "api_key": key, "secret_key": secret, "paper_trading": paper, "tier": "standard"}
        for account_id, (key, secret, paper) in DEMO.items()
    }
    accounts.update(overrides)
    return {"accounts": {k: v for k, v in accounts.items() if v is not None}}
