import importlib

import factory
from django.apps import apps

from accounts.models import AlpacaAccount

# Placeholders: credential encryption (accounts/crypto.py) is built by the accounts work.
API_KEY_CIPHERTEXT = "gAAAAABplaceholder-api-key-ciphertext-7Q2"
SECRET_KEY_CIPHERTEXT = "gAAAAABplaceholder-secret-key-ciphertext-9Z4"


class AlpacaAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AlpacaAccount

    account_id = factory.Sequence(lambda n: f"account_{n:03d}")
    name = factory.LazyAttribute(lambda o: f"Account {o.account_id}")
    api_key_encrypted = API_KEY_CIPHERTEXT
    secret_key_encrypted = SECRET_KEY_CIPHERTEXT
    account_number = factory.Sequence(lambda n: f"PA{n:08d}")
    account_type = "paper"
    type_source = "detected"


def ensure_compliance_group():
    """The group from the data migrations; transactional tests' flush empties it, so re-apply the migrations' functions."""
    from django.contrib.auth.models import Group

    importlib.import_module("audit.migrations.0003_compliance_officers").create_group(apps, None)
    importlib.import_module("trading.migrations.0002_compliance_officers_view_orderrecord").grant(apps, None)
    importlib.import_module("sellbot.migrations.0002_compliance_view").grant(apps, None)
    return Group.objects.get(name="Compliance officers")
