"""The source system: THE PLACE TO ADAPT (dataset.py), the source database, extraction, the demo source."""
