# Builds the agent for this runtime and runs it; see firmware/app.py.
import sys

from firmware import app
from firmware.modules import unload

agent = app.main(getattr(sys, "argv", [])[1:])
del app
unload("firmware.app")  # the wiring has run: its code need not stay resident
if agent is not None:
    agent.run()
