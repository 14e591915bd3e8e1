"""`NamedTuple` and `Protocol` for the modules every build imports, without importing `typing`.

With the `re`, `enum` and `contextlib` it pulls in, importing `typing` is about a third of
what the engine's imports cost, and an edit's build pays for all of them (a no-op does
without the engine). The type checker sees typing's own classes; at run time a `NamedTuple`
class statement makes the same `collections.namedtuple` that `typing.NamedTuple` makes (its
fields from the annotations, in order, with their defaults, and the class body's methods,
properties and docstring), and a `Protocol` is a plain base class, which is all a protocol
is at run time when nothing checks `isinstance` against it. A record's module needs `from
__future__ import annotations`, as every bflow module has: from Python 3.14 on, only with it
does the class body hold its annotations when the class is made.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import NamedTuple as NamedTuple
    from typing import Protocol as Protocol
else:
    from collections import namedtuple

    class _NamedTupleMeta(type):
        def __new__(mcls, name, bases, namespace):
            if not bases:  # NamedTuple itself
                return super().__new__(mcls, name, bases, namespace)
            fields = namespace.get("__annotations__")
            if not fields:  # from Python 3.14 on, only that import keeps them in the namespace
                raise TypeError(f"{name}: no fields; a record's module needs `from __future__ "
                                "import annotations`")
            defaults = [namespace[field] for field in fields if field in namespace]
            record = namedtuple(name, fields, defaults=defaults, module=namespace["__module__"])
            for key, value in namespace.items():
                if key not in fields and key != "__module__":
                    setattr(record, key, value)
            return record

    class NamedTuple(metaclass=_NamedTupleMeta):
        pass

    class Protocol:
        pass
