# Code loaded for one task and dropped after it: on a small heap, resident bytecode is
# what limits us.
import gc
import sys


def unload(name):
    """Forget a module so the GC can free its bytecode."""
    sys.modules.pop(name, None)
    i = name.rfind(".")
    parent = sys.modules.get(name[:i])
    if parent is not None and hasattr(parent, name[i + 1:]):
        delattr(parent, name[i + 1:])
    gc.collect()
