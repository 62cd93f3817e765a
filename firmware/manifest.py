# What a custom MicroPython firmware freezes: the whole agent, so its bytecode runs from
# flash and the GC heap holds only its data (README, "Memory"). For an ESP32 image:
#   make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/firmware/manifest.py
# (the 32-bit measuring build of the unix port takes it as it is).
try:  # an ESP32 port's own frozen modules first: _boot.py mounts the filesystem
    include("$(PORT_DIR)/boards/manifest.py")
except Exception:  # the unix port has no such file, and the agent needs none of its modules
    pass
package("firmware", base_path="..")
