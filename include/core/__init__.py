"""Foundations every stage uses: settings (the one place of configuration), the replay clock,
asset names and their event contracts, the schema language, HTML helpers, the runtime environment."""
