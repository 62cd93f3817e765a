# Runs first on the ESP32 and must return quickly; main.py starts the agent.
import gc

gc.collect()
