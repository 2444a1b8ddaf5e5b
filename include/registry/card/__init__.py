"""The parts of a model card: its record (read from MLflow and the lake), what it says, and its
Markdown and HTML renderings. Publishing and the CLI are in include/registry/model_card.py."""
