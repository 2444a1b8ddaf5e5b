"""Foundations every stage uses: settings, the replay clock, asset names, the runtime env.
Imports nothing else from include/."""
