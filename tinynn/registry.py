"""Registry: the class names a saved file may use, one table per kind (layers, losses, optimizers, schedulers).

A checkpoint stores a class by its name (``{"type": "Adam", "config": {...}}``); loading looks
the name up in the registry of that kind and calls the class's ``from_config``. Built-in classes
are registered where they are defined; register your own with the kind's decorator
(``tn.layers.register_layer``, ``tn.losses.register_loss``, ``tn.optim.register_optimizer``,
``tn.optim.lr_scheduler.register_scheduler``) before loading a file that names it.

Every registry is keyed by the class name, exactly as ``type(obj).__name__`` spells it;
:meth:`Registry.find` also accepts any capitalisation (``"adam"`` for ``Adam``), which is how the
command line names optimizers.
"""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T", bound=type)


class Registry(dict):
    """Class name -> class, for the subclasses of ``base`` (a dict; add to it with :meth:`register`)."""

    def __init__(self, kind: str, base: type, decorator: str) -> None:
        super().__init__()
        self.kind, self.base, self.decorator = kind, base, decorator  # decorator: how users register, for messages

    def register(self, cls: T) -> T:
        """Class decorator: make ``cls`` loadable by its name. Registering the same class again is a no-op.

        A second class of the same name (in any capitalisation) is a ValueError: a file naming it
        would be ambiguous.
        """
        if not (isinstance(cls, type) and issubclass(cls, self.base)):
            raise TypeError(f"{self.decorator} expects a {self.base.__name__} subclass, got {cls!r}")
        for name, known in self.items():
            if name.lower() == cls.__name__.lower() and known is not cls:
                raise ValueError(f"a different {self.kind} named {name!r} is already registered ({known!r})")
        self[cls.__name__] = cls
        return cls

    def lookup(self, name: Any) -> type:
        """The class registered as ``name`` (exact spelling); a ValueError listing the known names if none."""
        if not isinstance(name, str) or name not in self:
            raise ValueError(
                f"unknown {self.kind} type {name!r}; known: {', '.join(sorted(self))} "
                f"(a class of your own: decorate it with @{self.decorator} before loading)"
            )
        return self[name]

    def find(self, name: str) -> type:
        """As :meth:`lookup`, in any capitalisation (``"adamw"`` finds ``AdamW``)."""
        for key, cls in self.items():
            if isinstance(name, str) and key.lower() == name.lower():
                return cls
        raise ValueError(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(k.lower() for k in self))}")

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, [{', '.join(sorted(self))}])"
