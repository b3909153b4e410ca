"""Walking nested batches: dicts, lists, tuples, named tuples and dataclasses."""
import dataclasses
from typing import Any, Callable

__all__ = ['map_nested']


def map_nested(obj: Any, fn: Callable[[Any, Callable[[Any], Any]], Any]) -> Any:
    """Rebuild ``obj`` with ``fn`` applied to everything that is not a container.

    Dicts (and their subclasses), lists, tuples, named tuples and dataclass
    instances are rebuilt with their items mapped; every other object ``x``
    becomes ``fn(x, walk)``, where ``walk`` maps a nested object the same way
    (for leaves that hold a batch themselves, e.g. mmcv's ``DataContainer``).
    """
    def walk(o: Any) -> Any:
        if isinstance(o, dict):
            return type(o)((key, walk(value)) for key, value in o.items())
        if isinstance(o, tuple) and hasattr(o, '_fields'):  # named tuple
            return type(o)(*(walk(value) for value in o))
        if isinstance(o, (list, tuple)):
            return type(o)(walk(value) for value in o)
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return dataclasses.replace(o, **{f.name: walk(getattr(o, f.name))
                                             for f in dataclasses.fields(o) if f.init})
        return fn(o, walk)

    return walk(obj)
