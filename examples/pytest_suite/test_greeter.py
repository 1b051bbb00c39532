import importlib

import pytest

from greetings import greeter, registry


def test_greets():
    assert greeter.greet("Ada") == "Hello, Ada"


def test_reload_keeps_working():
    registry.register(greeter.greet)  # the registry keeps this greet past the reload
    importlib.reload(greeter)
    assert greeter.greet("Ada") == "Hello, Ada"


@pytest.mark.no_stale
def test_reload_leaves_nothing():
    importlib.reload(greeter)
    assert greeter.greet("Bob") == "Hello, Bob"
