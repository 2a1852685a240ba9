from __future__ import annotations

import pytest

from kvsim.errors import ConfigError
from kvsim.registry import Registry


def test_register_lookup_and_errors() -> None:
    reg: Registry[type] = Registry("widget", "widgets.kind", "kind", "kvsim.errors")

    @reg.register("a")
    class A:
        kind = ""

    assert A.kind == "a"
    assert reg.get("a") is A
    assert reg.register("a")(A) is A  # re-registering the same class is a no-op
    with pytest.raises(ValueError, match="already registered"):

        @reg.register("a")
        class B:
            kind = ""

    with pytest.raises(ConfigError) as info:
        reg.get("zzz")
    assert str(info.value) == "widgets.kind: unknown widget 'zzz'; known: a"
    assert reg.names() == ["a"]
