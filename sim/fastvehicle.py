"""Stock vehicle behaviour with a cheaper `np.clip` on scalars (part of the fast core).

After the road-level searches, the largest single cost of a substep is `np.clip` on Python or
numpy scalars in IDM, MOBIL and the steering controller (about 8 calls per vehicle per substep,
each a trip through numpy's array machinery). The fast vehicle classes run highway-env's own
method code (the same code objects) with a module namespace in which `np.clip` of one float
between two non-NaN numbers is two comparisons that reproduce numpy's result exactly, NaN and
signed zeros included (`scalar_clip`; tested against `np.clip` in tests/sim/test_fastcore.py).
Every other call, including `np.clip` of arrays or integers, goes to numpy itself.

Only methods that call `np.clip` are rebound; a vehicle of this road gets its fast class at the
start of each substep (`FastRoadCore.act`), so vehicles spawned mid-episode are covered too.
"""

from __future__ import annotations

import functools
import sys
import types

import numpy as np
from highway_env.vehicle.dynamics import BicycleVehicle
from highway_env.vehicle.kinematics import Vehicle

_FLOAT = (float, np.float64)
_BOUND = (int, float, np.float64, np.int64)


def scalar_clip(a, a_min, a_max, *args, **kwargs):
    """`np.clip`; for a float between two non-NaN bounds, without numpy's array machinery."""
    if (not args and not kwargs and type(a) in _FLOAT and type(a_min) in _BOUND and type(a_max) in _BOUND
            and a_min == a_min and a_max == a_max):
        r = a_min if a < a_min else a  # numpy keeps `a` on ties (signed zeros) and NaN
        return np.float64(a_max if r > a_max else r)
    return np.clip(a, a_min, a_max, *args, **kwargs)


def _numpy_namespace() -> types.ModuleType:
    """numpy's attributes, with `clip` replaced; anything else resolves to numpy itself."""
    ns = types.ModuleType("numpy")
    ns.__dict__.update(np.__dict__)
    ns.clip = scalar_clip
    ns.__getattr__ = lambda name: getattr(np, name)  # numpy's lazily loaded attributes
    return ns


FAST_NUMPY = _numpy_namespace()


@functools.cache
def _globals(module_name: str) -> dict:
    """A copy of a highway-env module's globals in which `np` is `FAST_NUMPY`."""
    g = dict(vars(sys.modules[module_name]))
    g["np"] = FAST_NUMPY
    return g


def _calls_clip(code: types.CodeType) -> bool:
    if "np" in code.co_names and "clip" in code.co_names:
        return True
    return any(isinstance(c, types.CodeType) and _calls_clip(c) for c in code.co_consts)


def _rebind(fn: types.FunctionType) -> types.FunctionType:
    """The same code, closure and defaults, reading module globals with the fast `np`."""
    module = fn.__module__
    new = types.FunctionType(fn.__code__, _globals(module), fn.__name__, fn.__defaults__, fn.__closure__)
    new.__kwdefaults__ = fn.__kwdefaults__
    new.__qualname__, new.__doc__, new.__module__ = fn.__qualname__, fn.__doc__, module
    return new


@functools.cache
def fast_vehicle_class(cls: type) -> type:
    """`cls` with its highway-env methods that call `np.clip` rebound; `cls` if it has none."""
    if cls.__dict__.get("_fast_vehicle", False):
        return cls
    rebound = {}
    for name in dir(cls):
        fn = next((k.__dict__[name] for k in cls.__mro__ if name in k.__dict__), None)
        if isinstance(fn, types.FunctionType) and fn.__module__.startswith("highway_env.") and _calls_clip(fn.__code__):
            rebound[name] = _rebind(fn)
    if not rebound:
        return cls
    name = f"Fast{cls.__name__}"
    return type(name, (cls,), {"__module__": cls.__module__, "_fast_vehicle": True, **rebound})


# highway-env's renderer tests these exact types (tyres are drawn only on them): never subclass.
EXACT_TYPES = (Vehicle, BicycleVehicle)


def speed_up(vehicles: list) -> None:
    """Give each vehicle its fast class (in place; a no-op for vehicles that have it)."""
    for v in vehicles:
        cls = type(v)
        if cls in EXACT_TYPES:
            continue
        fast = fast_vehicle_class(cls)
        if fast is not cls:
            v.__class__ = fast
