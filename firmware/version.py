# The firmware's version: told to the service (/update firmware), printed by the console
# and on the test page. A module of its own so that anything may import it.
VERSION = "0.1.0"
