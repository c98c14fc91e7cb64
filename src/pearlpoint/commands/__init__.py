"""CLI sub-commands; each module defines ``register(app)``. See pearlpoint.cli.COMMAND_MODULES."""
