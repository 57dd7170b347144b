"""Selectors read the bot's state without creating its row; the services create it on first write."""
from __future__ import annotations

import pytest

from sellbot import selectors, services
from sellbot.models import BotStatus, SellBotState

pytestmark = pytest.mark.django_db


def test_reading_the_state_creates_no_row_and_ensuring_it_does(config_file):
    config_file.sell(enabled=True)
    state = selectors.bot_state()
    assert state.enabled is True and state.status == BotStatus.RUNNING
    assert not SellBotState.objects.exists()

    ensured = services.bot_state_ensure()
    assert SellBotState.objects.get().pk == ensured.pk == selectors.STATE_PK and ensured.enabled is True
