import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# The firmware's `from micropython import const` under CPython (the unit tests import its
# modules): const() is the identity there, as it is at run time on the device.
if "micropython" not in sys.modules:
    import types
    _mp = types.ModuleType("micropython")
    _mp.const = lambda value: value
    sys.modules["micropython"] = _mp
