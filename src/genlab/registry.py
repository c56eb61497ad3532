"""Named registries: every config name used on the command line is a key registered here.

A registry fails loudly on unknown names and lists the known ones, so a typo on the command line is
reported before any data is loaded or any model is built.

Entries register themselves where they are defined (``@OBJECTIVES.register("fce")``). A registry
made with ``discover="genlab.objectives"`` imports every module of that package (``pkgutil``) the
first time it is asked for a name, so a new module in the package is found without being added to
any import list.
"""

from __future__ import annotations

import operator

import importlib
import inspect
import pkgutil
from typing import Any, Callable, Generic, Iterable, Iterator, Mapping, TypeVar

from genlab.errors import ConfigError, GenlabError

T = TypeVar("T")


class UnknownNameError(GenlabError, KeyError):
    """An unknown registry key; the message lists the valid ones."""

    def __init__(self, kind: str, name: object, known: list[str]):
        self.kind, self.name, self.known = kind, name, known
        super().__init__(f"unknown {kind} {name!r}; valid {kind}s: {', '.join(known) or '(none)'}")

    def __str__(self) -> str:  # KeyError would quote the whole message
        return self.args[0]


def import_submodules(package: str) -> None:
    """Import every module and subpackage of ``package`` (recursively); import errors propagate."""
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(getattr(root, "__path__", []), prefix=f"{package}."):
        importlib.import_module(info.name)


class Registry(Generic[T]):
    """A name -> object mapping filled by the ``register`` decorator where each object is defined.

    ``discover``: a package whose modules are imported on the first look-up, so that every entry
    defined anywhere in it is registered (see the module docstring).
    """

    def __init__(self, kind: str, discover: str | None = None):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._discover = discover

    def register(self, *names: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            for name in names or (obj.__name__,):
                if name in self._items and self._items[name] is not obj:
                    raise ValueError(f"{self.kind} {name!r} is registered twice")
                self._items[name] = obj
            return obj

        return decorator

    def _loaded(self) -> dict[str, T]:
        if self._discover is not None:
            package, self._discover = self._discover, None  # first, so a module that looks up a name while importing does not recurse
            import_submodules(package)
        return self._items

    def get(self, name: str) -> T:
        try:
            return self._loaded()[name]
        except (KeyError, TypeError):
            raise UnknownNameError(self.kind, name, self.names()) from None

    def names(self) -> list[str]:
        return sorted(self._loaded())

    def __contains__(self, name: object) -> bool:
        try:
            return name in self._loaded()
        except TypeError:  # unhashable
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._loaded())


def keyword_defaults(fn: Callable, skip: Iterable[str] = ()) -> dict[str, Any]:
    """The configurable keyword arguments of ``fn`` and their defaults: every parameter with a
    default that is not keyword-only and not in ``skip``. Keyword-only parameters are what the
    caller supplies at run time (the device, the data's input shape ...), never config."""
    skip = set(skip)
    return {
        name: p.default
        for name, p in inspect.signature(fn).parameters.items()
        if name not in skip and name != "self" and p.default is not inspect.Parameter.empty
        and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,)
    }


def runtime_arguments(fn: Callable) -> list[str]:
    """The keyword-only parameters of ``fn``: what a run supplies, not what a user configures."""
    return [name for name, p in inspect.signature(fn).parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]


def check_options(owner: str, fn: Callable, options: Mapping[str, Any], skip: Iterable[str] = (), noun: str = "option") -> None:
    """Refuse options that ``fn`` does not take as configurable keyword arguments, listing the
    ones it takes; ``owner`` says whose they are (e.g. "objective 'fce'", "dataset 'mpi3d'")."""
    known = keyword_defaults(fn, skip)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(
            f"{owner} has no {noun}(s) {', '.join(unknown)}; its {noun}s are: {', '.join(sorted(known)) or '(none)'}"
        )


def positive_int(value, what: str) -> int:
    """``value`` as an int >= 1 (a dataset size, a count), or a ``ConfigError`` naming ``what``."""
    try:
        count = operator.index(value)
    except TypeError:
        raise ConfigError(f"{what} must be an integer, got {value!r}") from None
    if count < 1:
        raise ConfigError(f"{what} must be at least 1, got {count}")
    return count
