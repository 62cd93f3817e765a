# Builds the agent for this runtime and runs it; see firmware/app.py.
import sys

from firmware import app

app.main(getattr(sys, "argv", [])[1:])
