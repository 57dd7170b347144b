import pytest

from tests.helpers.stack import stack_factory  # noqa: F401 - the fixture

# A whole-stack test starts three or four processes and waits on them; on a busy 2-core machine one can
# pass in more than the suite's 300 s. A test's own timeout marker still wins.
E2E_TIMEOUT = 900


def pytest_collection_modifyitems(items):
    for item in items:
        if item.get_closest_marker("timeout") is None and "tests/e2e/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.timeout(E2E_TIMEOUT))
