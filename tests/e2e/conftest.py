from tests.helpers.stack import stack_factory  # noqa: F401 - the fixture
